"""The Gaussian noising x_t = alpha_t x_0 + sigma_t eps that chapters 7 and 8 share, in its parameterisations.

- the data on [-1, 1]: integer pixels 0..levels-1 to the grid of `levels` values and back (`to_grid`,
  `from_grid`), the scaling both DDPM (chapter 7) and VDM (chapter 8) train on;
- the noise level by its log-SNR lambda = log(alpha^2 / sigma^2) (`alpha_sigma`) and the continuous-time
  log-SNR schedules, pure functions of t in [0, 1] decreasing in t (`linear_log_snr`, `cosine_log_snr`,
  and chapter 8's learned monotone `LearnedSchedule`);
- the conversions between the four targets a network may predict, x_0, eps, the score and v
  (Eq. (eq-vdm-parameterisations), Eq. (eq-vdm-v)).

Notation as in book/notation.md: x_0 is data, noise grows with t. Per-example scalars (alpha, sigma,
lambda) are Python floats or (B,) tensors, broadcast against a batch of any shape with `per_example`.
"""
import math

import torch
from torch import nn

from .utils import check_levels, check_positive_int, check_same_shape, per_example


# -- the data on the grid of `levels` values in [-1, 1] ------------------------------------------
def grid_values(levels: int = 17, device=None, dtype=None) -> torch.Tensor:
    """The `levels` data values -1, ..., 1 equally spaced (17 for the digits), shape (levels,)."""
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    return torch.linspace(-1.0, 1.0, levels, device=device, dtype=dtype)


def to_grid(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """Integer pixels 0..levels-1 (any shape) -> floats 2 x / (levels - 1) - 1 on the grid in [-1, 1]."""
    check_levels(x, levels, "x")
    return 2 * x.to(torch.get_default_dtype()) / (levels - 1) - 1


def from_grid(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """Floats (model samples, clipped to [-1, 1] first) -> the pixel scale 0..levels-1, on the CPU, not rounded."""
    check_positive_int(levels, "levels")
    if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
        raise ValueError(f"x must be a floating-point tensor, got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    return ((x.clamp(-1, 1) + 1) * (levels - 1) / 2).cpu()


# -- the noise level by its log-SNR --------------------------------------------------------------
def alpha_sigma(log_snr):
    """Variance-preserving (alpha, sigma) of lambda: alpha^2 = sigmoid(lambda), sigma^2 = sigmoid(-lambda).

    Eq. (eq-vdm-snr)."""
    log_snr = torch.as_tensor(log_snr, dtype=torch.get_default_dtype()) if not torch.is_tensor(log_snr) else log_snr
    return torch.sigmoid(log_snr).sqrt(), torch.sigmoid(-log_snr).sqrt()


def check_time(t):
    """Continuous time t as a tensor; ValueError unless every entry lies in [0, 1]."""
    t = torch.as_tensor(t, dtype=torch.get_default_dtype()) if not torch.is_tensor(t) else t
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not bool(torch.all((t >= 0) & (t <= 1))):
        raise ValueError(f"continuous time t must lie in [0, 1], got values in [{t.min().item()}, {t.max().item()}]")
    return t


LOG_SNR_MIN, LOG_SNR_MAX = -5.0, 13.3  # VDM's initial endpoints lambda(1), lambda(0) (their CIFAR-10 values)


def _check_endpoints(log_snr_min, log_snr_max):
    if not (math.isfinite(log_snr_min) and math.isfinite(log_snr_max) and log_snr_max > log_snr_min):
        raise ValueError(f"a decreasing log-SNR needs finite log_snr_max > log_snr_min, "
                         f"got log_snr_max={log_snr_max}, log_snr_min={log_snr_min}")


def linear_log_snr(t, log_snr_min: float = LOG_SNR_MIN, log_snr_max: float = LOG_SNR_MAX):
    """lambda(t) linear from log_snr_max at t = 0 to log_snr_min at t = 1 (VDM's fixed schedule). Eq. (eq-vdm-snr)."""
    _check_endpoints(log_snr_min, log_snr_max)
    t = check_time(t)
    return log_snr_max + (log_snr_min - log_snr_max) * t


def cosine_log_snr(t, log_snr_min: float = LOG_SNR_MIN, log_snr_max: float = LOG_SNR_MAX):
    """lambda(t) = -2 log tan(a t + b), i.e. alpha = cos(a t + b): the cosine schedule. Eq. (eq-ddpm-cosine-schedule).

    b = arctan(exp(-log_snr_max / 2)) and a = arctan(exp(-log_snr_min / 2)) - b give lambda(0) = log_snr_max and
    lambda(1) = log_snr_min (Nichol & Dhariwal 2021; Kingma & Gao 2023 for the truncation to endpoints).
    """
    _check_endpoints(log_snr_min, log_snr_max)
    t = check_time(t)
    b = math.atan(math.exp(-0.5 * log_snr_max))
    a = math.atan(math.exp(-0.5 * log_snr_min)) - b
    return -2.0 * torch.log(torch.tan(a * t + b))


class LearnedSchedule(nn.Module):
    """lambda(t) falling from log_snr_max (t = 0) to log_snr_min (t = 1), both learnable. Eq. (eq-vdm-learned-schedule).

    lambda(t) = log_snr_max + (log_snr_min - log_snr_max) (g(t) - g(0)) / (g(1) - g(0)) with the monotone
    network g(t) = w1 t + (1/K) sum_k w3_k (2 sigmoid(w2_k (2t - 1) + b_k) - 1), every weight made
    non-negative by abs (Kingma et al. 2021, App. H, who write gamma = -lambda). The shape is split from
    the endpoints so the training loop can treat the two differently (see `VDM.terms`).
    """

    def __init__(self, log_snr_min: float = LOG_SNR_MIN, log_snr_max: float = LOG_SNR_MAX, n_features: int = 64):
        super().__init__()
        if not log_snr_max > log_snr_min:
            raise ValueError(f"need log_snr_max > log_snr_min, got log_snr_min={log_snr_min}, "
                             f"log_snr_max={log_snr_max}")
        check_positive_int(n_features, "n_features")
        self.log_snr_max = nn.Parameter(torch.tensor(float(log_snr_max)))
        self.log_snr_min = nn.Parameter(torch.tensor(float(log_snr_min)))
        self.w1 = nn.Parameter(torch.ones(()))
        self.w2 = nn.Parameter(torch.randn(n_features))
        self.b = nn.Parameter(torch.randn(n_features))
        self.w3 = nn.Parameter(0.1 * torch.rand(n_features))  # starts close to linear

    def _g(self, t):
        """The monotone network and its slope at t (B,): (g(t), g'(t))."""
        sig = torch.sigmoid(self.w2.abs() * (2 * t[:, None] - 1) + self.b)  # (B, K)
        g = self.w1.abs() * t + ((2 * sig - 1) * self.w3.abs()).mean(1)
        dg = self.w1.abs() + (2 * sig * (1 - sig) * 2 * self.w2.abs() * self.w3.abs()).mean(1)
        return g, dg

    def shape(self, t: torch.Tensor):
        """The normalised shape s(t) in [0, 1] (s(0) = 0, s(1) = 1) and its slope s'(t) >= 0, each (B,)."""
        check_time(t)
        g, dg = self._g(t)
        g_ends, _ = self._g(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        scale = g_ends[1] - g_ends[0]
        return (g - g_ends[0]) / scale, dg / scale

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """lambda(t) = log SNR(t), shape (B,), decreasing in t: what `vdm_terms` and the samplers take."""
        s, _ = self.shape(t)
        return self.log_snr_max + (self.log_snr_min - self.log_snr_max) * s


# -- conversions between the targets x_0, eps, score and v ---------------------------------------
def x0_from_eps(xt, eps, alpha, sigma):
    """x_0 = (x_t - sigma eps) / alpha, the inverse of x_t = alpha x_0 + sigma eps. Eq. (eq-vdm-parameterisations)."""
    check_same_shape(xt, eps, "xt", "eps")
    alpha, sigma = per_example(alpha, xt, "alpha", broadcast=True), per_example(sigma, xt, "sigma", broadcast=True)
    return (xt - sigma * eps) / alpha


def eps_from_x0(xt, x0, alpha, sigma):
    """eps = (x_t - alpha x_0) / sigma. Eq. (eq-vdm-parameterisations)."""
    check_same_shape(xt, x0, "xt", "x0")
    alpha, sigma = per_example(alpha, xt, "alpha", broadcast=True), per_example(sigma, xt, "sigma", broadcast=True)
    return (xt - alpha * x0) / sigma


def score_from_eps(eps, sigma):
    """score = grad log q(x_t) = -eps / sigma (for the posterior-mean eps). Eq. (eq-ddpm-eps-score)."""
    return -eps / per_example(sigma, eps, "sigma", broadcast=True)


def eps_from_score(score, sigma):
    """eps = -sigma * score. Eq. (eq-ddpm-eps-score)."""
    return -per_example(sigma, score, "sigma", broadcast=True) * score


def v_from_x0_eps(x0, eps, alpha, sigma):
    """The v target v = alpha eps - sigma x_0 (Salimans & Ho 2022). Eq. (eq-vdm-v)."""
    check_same_shape(x0, eps, "x0", "eps")
    alpha, sigma = per_example(alpha, x0, "alpha", broadcast=True), per_example(sigma, x0, "sigma", broadcast=True)
    return alpha * eps - sigma * x0


def x0_from_v(xt, v, alpha, sigma):
    """x_0 = (alpha x_t - sigma v) / (alpha^2 + sigma^2) (denominator 1 if variance preserving). Eq. (eq-vdm-v)."""
    check_same_shape(xt, v, "xt", "v")
    a, s = per_example(alpha, xt, "alpha", broadcast=True), per_example(sigma, xt, "sigma", broadcast=True)
    return (a * xt - s * v) / (a**2 + s**2)


def eps_from_v(xt, v, alpha, sigma):
    """eps = (sigma x_t + alpha v) / (alpha^2 + sigma^2). Eq. (eq-vdm-v)."""
    check_same_shape(xt, v, "xt", "v")
    a, s = per_example(alpha, xt, "alpha", broadcast=True), per_example(sigma, xt, "sigma", broadcast=True)
    return (s * xt + a * v) / (a**2 + s**2)
