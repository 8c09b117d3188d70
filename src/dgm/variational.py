"""Chapter 4: variational inference. The ELBO on an exact model, gradient estimators, Gumbel tricks.

The linear-Gaussian latent model z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_D) (Eq. (eq-vi-linear-gaussian))
is the chapter's running example: its evidence, its posterior and the ELBO of any Gaussian q are all
closed forms, so log p(x) = ELBO + KL(q || p(z | x)) (Eq. (eq-vi-elbo-gap)) can be checked exactly.
The two estimators of grad E_q[f(z)] (score function and reparameterisation) return one estimate per
draw, so their means and variances can be compared; Gumbel-max samples a categorical exactly and
Gumbel-softmax relaxes it.
"""
import math

import torch

from .utils import (
    check_batch,
    check_positive,
    check_positive_int,
    check_same_shape,
    randn_like,
    standard_normal_log_prob,
)

LOG_2PI = math.log(2 * math.pi)


def _check_gaussian(mean: torch.Tensor, log_var: torch.Tensor, k: int | None = None, name: str = "q") -> None:
    """ValueError unless mean and log_var have the same shape (..., k) (k = the latent size, if given)."""
    check_same_shape(mean, log_var, f"{name}_mean", f"{name}_log_var")
    if k is not None and (mean.ndim == 0 or mean.shape[-1] != k):
        raise ValueError(f"mismatched latent sizes: the model has k={k} latents, {name}_mean has shape "
                         f"{tuple(mean.shape)}")


def check_n_samples(n_samples: int) -> None:
    """ValueError unless the number of Monte Carlo samples K is an int >= 1."""
    check_positive_int(n_samples, "the number of samples K")


def gaussian_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor | None = None,
                logvar2: torch.Tensor | None = None) -> torch.Tensor:
    """KL(N(mu1, diag e^logvar1) || N(mu2, diag e^logvar2)), (..., k) -> (...), Eq. (eq-vi-gauss-kl).

    Summed over the last axis; mu2 = logvar2 = None is the standard normal prior N(0, I).
    """
    check_same_shape(mu1, logvar1, "mu1", "logvar1")
    mu2 = torch.zeros_like(mu1) if mu2 is None else mu2
    logvar2 = torch.zeros_like(logvar1) if logvar2 is None else logvar2
    if mu2.shape[-1:] != mu1.shape[-1:] or logvar2.shape[-1:] != mu1.shape[-1:]:
        raise ValueError(f"mismatched latent sizes: mu1 has shape {tuple(mu1.shape)}, mu2 {tuple(mu2.shape)}, "
                         f"logvar2 {tuple(logvar2.shape)}")
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1).sum(-1)


def diagonal_gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag e^log_var) summed over the last axis, (..., k) -> (...); z broadcasts against mean."""
    check_same_shape(mean, log_var, "mean", "log_var")
    return -0.5 * (LOG_2PI + log_var + (z - mean) ** 2 / log_var.exp()).sum(-1)


def sample_diagonal_gaussian(mean: torch.Tensor, log_var: torch.Tensor, n_samples: int,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mean + e^(log_var / 2) eps, eps ~ N(0, I): (B, k) -> (n_samples, B, k), Eq. (eq-vi-reparam)."""
    check_n_samples(n_samples)
    eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype).to(mean.device)
    return mean + (0.5 * log_var).exp() * eps  # (S, B, k): differentiable in mean and log_var


class LinearGaussian:
    """z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_D), everything in closed form, Eq. (eq-vi-linear-gaussian)."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, s: float):
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ValueError(f"W must have shape (D, k) and b shape (D,), got {tuple(W.shape)} and {tuple(b.shape)}")
        check_positive(s, "s")
        self.W, self.b, self.s = W, b, float(s)
        self.dim, self.latent_dim = W.shape

    def _check(self, x: torch.Tensor, q_mean=None, q_log_var=None) -> None:
        check_batch(x, self.dim, "x")
        if q_mean is not None:
            _check_gaussian(q_mean, q_log_var, self.latent_dim)
            if q_mean.shape[0] != x.shape[0]:
                raise ValueError(f"q_mean must have shape (B, k)=({x.shape[0]}, {self.latent_dim}), "
                                 f"got {tuple(q_mean.shape)}")

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) = log N(x; W z + b, s^2 I), x (B, D), z (..., B, k) -> (..., B)."""
        mean = z @ self.W.T + self.b  # (..., B, D)
        return -0.5 * (((x - mean) / self.s) ** 2).sum(-1) - 0.5 * self.dim * (LOG_2PI + 2 * math.log(self.s))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x | z), shape (..., B)."""
        log_prior = standard_normal_log_prob(z)  # (..., B)
        return log_prior + self.log_likelihood(x, z)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; b, W W^T + s^2 I), shape (B,), Eq. (eq-vi-linear-gaussian)."""
        self._check(x)
        cov = self.W @ self.W.T + self.s**2 * torch.eye(self.dim, dtype=self.W.dtype, device=self.W.device)
        L = torch.linalg.cholesky(cov)  # (D, D), cov = L L^T
        r = torch.linalg.solve_triangular(L, (x - self.b).T, upper=False)  # (D, B): L^{-1} (x - b)
        log_det = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * ((r**2).sum(0) + log_det + self.dim * LOG_2PI)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact p(z | x) = N(mean, cov): cov = (I + W^T W / s^2)^{-1}, mean = cov W^T (x - b) / s^2; (B, k), (k, k)."""
        self._check(x)
        eye = torch.eye(self.latent_dim, dtype=self.W.dtype, device=self.W.device)
        cov = torch.linalg.inv(eye + self.W.T @ self.W / self.s**2)  # (k, k), the same for every x
        mean = (x - self.b) @ self.W @ cov / self.s**2  # (B, k)
        return mean, cov

    def elbo(self, x: torch.Tensor, q_mean: torch.Tensor, q_log_var: torch.Tensor) -> torch.Tensor:
        """Closed-form ELBO of q = N(q_mean, diag e^q_log_var), (B,), Eq. (eq-vi-elbo-split).

        ELBO = E_q[log p(x | z)] - KL(q || p(z)).
        """
        self._check(x, q_mean, q_log_var)
        # 1. E_q ||x - W z - b||^2 = ||x - W m - b||^2 + sum_j ||W_j||^2 v_j (the variance of W z)
        residual = ((x - q_mean @ self.W.T - self.b) ** 2).sum(-1)  # (B,)
        spread = (q_log_var.exp() * (self.W**2).sum(0)).sum(-1)  # (B,)
        recon = -0.5 * (residual + spread) / self.s**2 - 0.5 * self.dim * (LOG_2PI + 2 * math.log(self.s))
        # 2. minus the prior-matching KL, Eq. (eq-vi-gauss-kl)
        return recon - gaussian_kl(q_mean, q_log_var)

    def elbo_mc(self, x: torch.Tensor, q_mean: torch.Tensor, q_log_var: torch.Tensor, n_samples: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """One-draw ELBO estimates log p(x, z) - log q(z), z ~ q, (n_samples, B), Eq. (eq-vi-elbo-jensen).

        Their mean over axis 0 is an unbiased estimate of `elbo`.
        """
        self._check(x, q_mean, q_log_var)
        z = sample_diagonal_gaussian(q_mean, q_log_var, n_samples, generator)  # (S, B, k)
        return self.log_joint(x, z) - diagonal_gaussian_log_prob(z, q_mean, q_log_var)  # (S, B)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, z) ~ p(x, z): z ~ N(0, I_k), then x = W z + b + s eps; shapes (n, D), (n, k)."""
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype).to(self.W.device)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.W.dtype).to(self.W.device)
        return z @ self.W.T + self.b + self.s * eps, z


def _per_draw_params(mean: torch.Tensor, log_var: torch.Tensor, n_samples: int):
    """One leaf copy of (mean, log_var) per draw, (S, k) each: autograd then gives per-draw gradients."""
    check_n_samples(n_samples)
    check_same_shape(mean, log_var, "mean", "log_var")
    if mean.ndim != 1:
        raise ValueError(f"mean and log_var must have shape (k,), got {tuple(mean.shape)}")
    m = mean.detach().expand(n_samples, -1).clone().requires_grad_(True)
    lv = log_var.detach().expand(n_samples, -1).clone().requires_grad_(True)
    return m, lv


def score_function_grad(f, mean: torch.Tensor, log_var: torch.Tensor, n_samples: int,
                        generator: torch.Generator | None = None, baseline: float = 0.0):
    """Per-draw score-function (REINFORCE) estimates of grad_{mean, log_var} E_q[f(z)], q = N(mean, diag e^log_var),
    Eq. (eq-vi-score-function): (f(z) - baseline) grad log q(z), z ~ q. Returns two (n_samples, k) tensors.

    f maps (S, k) -> (S,) and is only evaluated (it need not be differentiable).
    """
    m, lv = _per_draw_params(mean, log_var, n_samples)
    with torch.no_grad():
        z = sample_diagonal_gaussian(m[0], lv[0], n_samples, generator)  # (S, k), no path to the parameters
        weight = f(z) - baseline  # (S,)
    log_q = diagonal_gaussian_log_prob(z, m, lv)  # (S,): row s depends only on the s-th copy
    grad_m, grad_lv = torch.autograd.grad(log_q.sum(), (m, lv))  # (S, k) each: grad log q(z_s)
    return weight[:, None] * grad_m, weight[:, None] * grad_lv


def reparam_grad(f, mean: torch.Tensor, log_var: torch.Tensor, n_samples: int,
                 generator: torch.Generator | None = None):
    """Per-draw reparameterisation estimates of grad_{mean, log_var} E_q[f(z)], Eq. (eq-vi-reparam):
    grad f(mean + e^(log_var / 2) eps), eps ~ N(0, I). Returns two (n_samples, k) tensors; f must be differentiable."""
    m, lv = _per_draw_params(mean, log_var, n_samples)
    eps = randn_like(m, generator)  # (S, k)
    z = m + (0.5 * lv).exp() * eps  # (S, k): a differentiable function of the parameters
    grad_m, grad_lv = torch.autograd.grad(f(z).sum(), (m, lv))
    return grad_m, grad_lv


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim < 1 or logits.shape[-1] < 1:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must have shape (..., K) with K >= 1 categories, got {shape}")


def gumbel_noise(shape, generator: torch.Generator | None = None, dtype=None, device=None) -> torch.Tensor:
    """Standard Gumbel noise G = -log(-log U), U ~ U(0, 1), of the given shape."""
    u = torch.rand(shape, generator=generator, dtype=dtype or torch.get_default_dtype())
    tiny = torch.finfo(u.dtype).tiny
    return -torch.log(-torch.log(u.clamp_min(tiny))).to(device)


def gumbel_max(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """argmax_k (logits_k + G_k), G_k iid Gumbel: exactly Categorical(softmax(logits)), Thm. (thm-vi-gumbel-max).

    (..., K) -> (...) int64.
    """
    _check_logits(logits)
    g = gumbel_noise(logits.shape, generator, logits.dtype, logits.device)  # (..., K)
    return torch.argmax(logits + g, dim=-1)  # (...,) int64


def gumbel_softmax(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """softmax((logits + G) / temperature): a point of the simplex, (..., K) -> (..., K), Eq. (eq-vi-gumbel-softmax).

    Draws the same G as `gumbel_max` with the same generator state, so as temperature -> 0 it tends to
    the one-hot of that sample; as temperature -> infinity it tends to the uniform vector 1/K.
    """
    _check_logits(logits)
    if not isinstance(temperature, (int, float)) or not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    g = gumbel_noise(logits.shape, generator, logits.dtype, logits.device)  # (..., K)
    return torch.softmax((logits + g) / temperature, dim=-1)
