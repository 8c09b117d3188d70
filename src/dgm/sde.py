"""Score SDEs (chapter 9): the forward processes dx = f(x, t) dt + g(t) dW and their reverse-time drifts.

Three forward SDEs of Song et al. (2021), each with a Gaussian transition kernel
q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I), so that the exact noised mixture of `dgm.data` is the
true marginal p_t at every t (`GaussianMixture.noised_score(x, *sde.alpha_sigma(t))`):

- VP (variance preserving, the continuum of DDPM's chain): f = -beta(t) x / 2, g = sqrt(beta(t)),
  alpha_t = exp(-B(t) / 2) with B(t) = int_0^t beta, sigma_t^2 = 1 - alpha_t^2;
- sub-VP: the same drift, g^2 = beta(t) (1 - exp(-2 B(t))), sigma_t = 1 - alpha_t^2 (below VP's);
- VE (variance exploding, the continuum of NCSN's noise ladder): f = 0, sigma(t) = s_min (s_max /
  s_min)^t, g = sigma(t) sqrt(2 log(s_max / s_min)), alpha_t = 1, sigma_t^2 = sigma(t)^2 - s_min^2.

Time t is continuous in [0, 1], a float or a per-example (B,) tensor; x has any shape (B, ...).
A score is a function score(x, t) -> a tensor of x's shape. The SDEs are frozen dataclasses: pure
functions of t, no hidden state.
"""
import math
from dataclasses import dataclass

import torch

from .parameterisations import check_time
from .utils import check_same_shape, per_example


def _check_range(low: float, high: float, low_name: str, high_name: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"need finite 0 < {low_name} < {high_name}, got {low_name}={low}, {high_name}={high}")


@dataclass(frozen=True)
class VPSDE:
    """dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW, beta linear from beta_min to beta_max (Song et al. 2021, Eq. 11)."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self):
        _check_range(self.beta_min, self.beta_max, "beta_min", "beta_max")

    def beta(self, t):
        """beta(t) = beta_min + t (beta_max - beta_min)."""
        return self.beta_min + check_time(t) * (self.beta_max - self.beta_min)

    def integral_beta(self, t):
        """B(t) = int_0^t beta(s) ds = beta_min t + (beta_max - beta_min) t^2 / 2."""
        t = check_time(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """f(x, t) = -beta(t) x / 2, the shape of x."""
        return -0.5 * per_example(self.beta(t), x, "beta(t)", broadcast=True) * x

    def diffusion(self, t):
        """g(t) = sqrt(beta(t)), a float tensor of t's shape."""
        return self.beta(t).sqrt()

    def alpha_sigma(self, t):
        """(alpha_t, sigma_t) of q(x_t | x_0) = N(alpha_t x_0, sigma_t^2 I): exp(-B/2), sqrt(1 - e^{-B})."""
        b = self.integral_beta(t)
        return torch.exp(-0.5 * b), (-torch.expm1(-b)).sqrt()

    prior_std = 1.0  # p_1 is N(0, I) up to exp(-B(1) / 2) ~ 7e-3 of the data


@dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """VP's drift with g(t)^2 = beta(t) (1 - exp(-2 B(t))): marginal std 1 - alpha_t^2 (Song et al. 2021, Eq. 29)."""

    def diffusion(self, t):
        """g(t) = sqrt(beta(t) (1 - exp(-2 B(t))))."""
        return (self.beta(t) * -torch.expm1(-2 * self.integral_beta(t))).sqrt()

    def alpha_sigma(self, t):
        """(alpha_t, sigma_t) = (exp(-B/2), 1 - exp(-B))."""
        b = self.integral_beta(t)
        return torch.exp(-0.5 * b), -torch.expm1(-b)


@dataclass(frozen=True)
class VESDE:
    """dx = sqrt(d sigma(t)^2 / dt) dW with sigma(t) = sigma_min (sigma_max / sigma_min)^t (Song et al. 2021, Eq. 9)."""

    sigma_min: float = 0.01
    sigma_max: float = 10.0

    def __post_init__(self):
        _check_range(self.sigma_min, self.sigma_max, "sigma_min", "sigma_max")

    def sigma(self, t):
        """The noise level sigma(t) = sigma_min (sigma_max / sigma_min)^t."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** check_time(t)

    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """f = 0 (checks t all the same)."""
        check_time(t)
        return torch.zeros_like(x)

    def diffusion(self, t):
        """g(t) = sigma(t) sqrt(2 log(sigma_max / sigma_min))."""
        return self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def alpha_sigma(self, t):
        """(1, sqrt(sigma(t)^2 - sigma_min^2)): the noise added since t = 0."""
        s = self.sigma(t)
        return torch.ones_like(s), (s**2 - self.sigma_min**2).clamp_min(0).sqrt()

    @property
    def prior_std(self) -> float:
        """p_1 is N(0, sigma_max^2 I) up to the data's own spread."""
        return self.sigma_max


def prior_sample(sde, shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """x_1 ~ N(0, prior_std^2 I) of the given shape (B, ...), drawn on the CPU with `generator`."""
    return (sde.prior_std * torch.randn(shape, generator=generator)).to(device)


def prior_log_prob(sde, x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, prior_std^2 I) summed over all but the batch axis, shape (B,)."""
    z = x.flatten(1) / sde.prior_std
    return -0.5 * (z**2).sum(1) - z.shape[1] * (math.log(sde.prior_std) + 0.5 * math.log(2 * math.pi))


def _score_drift(sde, score, x: torch.Tensor, t, weight: float) -> torch.Tensor:
    """f(x, t) - weight g(t)^2 score(x, t), with the score's shape checked against x."""
    s = score(x, t)
    check_same_shape(s, x, "score(x, t)", "x")
    g = per_example(sde.diffusion(t), x, "g(t)", broadcast=True)
    return sde.drift(x, t) - weight * g**2 * s


def reverse_drift(sde, score, x: torch.Tensor, t) -> torch.Tensor:
    """The drift f - g^2 score of the reverse-time SDE, run from t = 1 to 0 (Anderson 1982; Song et al. 2021, Eq. 6)."""
    return _score_drift(sde, score, x, t, 1.0)


def probability_flow_drift(sde, score, x: torch.Tensor, t) -> torch.Tensor:
    """The drift f - g^2 score / 2 of the probability-flow ODE: the same marginals (Song et al. 2021, Eq. 13)."""
    return _score_drift(sde, score, x, t, 0.5)
