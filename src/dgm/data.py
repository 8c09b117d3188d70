"""Ground-truth toy densities: 2-D Gaussian mixtures with exact densities, scores and denoisers.

Every toy set of the book is a `GaussianMixture` (curves such as moons or a swiss roll are many
small components laid along the curve). For x_t = alpha x_0 + sigma eps with x_0 from the mixture,
component k of x_t is N(alpha mu_k, (alpha^2 s_k^2 + sigma^2) I) (Appendix B, Gaussian convolution
of a mixture), so the noised density, its score and the posterior mean E[x_0 | x_t] are exact too.
The digits loader lives in `dgm.digits`.
"""
import math

import torch

from .utils import Estimate, append_dims, check_batch, check_positive, check_positive_int, per_example


class GaussianMixture:
    """sum_k w_k N(mu_k, diag(s_k^2)): means (K, D), stds (K, D) or (K,) or a float, weights (K,)."""

    def __init__(self, means, stds, weights=None):
        means = torch.as_tensor(means)
        means = means if means.is_floating_point() else means.to(torch.get_default_dtype())
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        K, D = means.shape
        stds = torch.as_tensor(stds, dtype=means.dtype, device=means.device)
        if stds.ndim == 0 or stds.shape == (K,):  # one std per mixture, or per component
            stds = stds.reshape(-1, 1).expand(K, D)
        if stds.shape != (K, D):
            raise ValueError(f"stds must be a float, shape (K,)=({K},) or (K, D)=({K}, {D}), got {tuple(stds.shape)}")
        check_positive(stds, "stds")
        weights = torch.ones(K) if weights is None else torch.as_tensor(weights, dtype=means.dtype)
        if weights.shape != (K,) or bool(torch.any(weights < 0)) or not weights.sum() > 0:
            raise ValueError(f"weights must be K={K} non-negative numbers with a positive sum, got {weights}")
        self.means, self.stds = means, stds.contiguous()
        self.weights = (weights / weights.sum()).to(means)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def to(self, device=None, dtype=None) -> "GaussianMixture":
        """A copy on another device and/or dtype."""
        move = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return GaussianMixture(move(self.means), move(self.stds), move(self.weights))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples, shape (n, D); drawn on the CPU (reproducible on any device), then moved."""
        check_positive_int(n, "n")
        k = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)  # (n, D)
        return (self.means.cpu()[k] + self.stds.cpu()[k] * eps).to(self.means.device)

    def mean(self) -> torch.Tensor:
        """Exact mean sum_k w_k mu_k, shape (D,)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Exact covariance (D, D) by the law of total covariance."""
        diff = self.means - self.mean()  # (K, D)
        within = torch.diag(self.weights @ self.stds**2)
        return within + diff.T @ (self.weights[:, None] * diff)

    # -- the exact oracles ----------------------------------------------------------------------
    def _components(self, xt, alpha, sigma):
        """Per-component terms of the law of x_t = alpha x_0 + sigma eps at the points xt (B, D)."""
        check_batch(xt, self.dim, "xt")
        alpha, sigma = (append_dims(per_example(v, xt, name), 3) for v, name in ((alpha, "alpha"), (sigma, "sigma")))
        mu, s = self.means.to(xt), self.stds.to(xt)  # (K, D)
        var = alpha**2 * s**2 + sigma**2  # (B, K, D)
        diff = xt[:, None, :] - alpha * mu  # (B, K, D)
        log_normal = -0.5 * (diff**2 / var + torch.log(2 * math.pi * var)).sum(-1)  # (B, K)
        log_joint = torch.log(self.weights.to(xt)) + log_normal  # (B, K): log w_k N(xt; ...)
        return log_joint, diff, var, alpha, s

    def _score(self, xt, alpha, sigma):
        log_joint, diff, var, _, _ = self._components(xt, alpha, sigma)
        resp = torch.softmax(log_joint, dim=1)[..., None]  # (B, K, 1) responsibilities r_k
        return (resp * (-diff / var)).sum(1)  # sum_k r_k * (score of component k)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density log p(x), shape (B,)."""
        return torch.logsumexp(self._components(x, 1.0, 0.0)[0], dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Exact score grad_x log p(x), shape (B, D): responsibility-weighted component scores."""
        return self._score(x, 1.0, 0.0)

    def noised(self, alpha: float, sigma: float) -> "GaussianMixture":
        """The exact law of x_t = alpha x_0 + sigma eps as a new mixture (scalar alpha > 0, sigma > 0)."""
        check_positive(alpha, "alpha")
        check_positive(sigma, "sigma")
        return GaussianMixture(alpha * self.means, torch.sqrt(alpha**2 * self.stds**2 + sigma**2), self.weights)

    def noised_log_prob(self, xt, alpha, sigma) -> torch.Tensor:
        """log p_t(x_t) of x_t = alpha x_0 + sigma eps; alpha, sigma scalars or (B,). Shape (B,)."""
        check_positive(alpha, "alpha")
        check_positive(sigma, "sigma")
        return torch.logsumexp(self._components(xt, alpha, sigma)[0], dim=1)

    def noised_score(self, xt, alpha, sigma) -> torch.Tensor:
        """grad log p_t(x_t) = sum_k r_k(x_t) (-(x_t - alpha mu_k) / var_k), shape (B, D)."""
        check_positive(alpha, "alpha")
        check_positive(sigma, "sigma")
        return self._score(xt, alpha, sigma)

    def denoise(self, xt, alpha, sigma) -> torch.Tensor:
        """Posterior mean E[x_0 | x_t], shape (B, D): r_k-weighted Gaussian posterior means."""
        check_positive(alpha, "alpha")
        check_positive(sigma, "sigma")
        log_joint, diff, var, alpha, s = self._components(xt, alpha, sigma)
        resp = torch.softmax(log_joint, dim=1)[..., None]  # (B, K, 1)
        post_mean = self.means.to(xt) + alpha * s**2 / var * diff  # (B, K, D): mu_k + gain (x_t - alpha mu_k)
        return (resp * post_mean).sum(1)

    def entropy(self, n: int = 100_000, generator: torch.Generator | None = None) -> Estimate:
        """Monte Carlo entropy H(p) = E_p[-log p(x)] from n exact samples, with its standard error."""
        return Estimate(-self.log_prob(self.sample(n, generator)))


# -- the toy sets: all live in roughly [-3, 3]^2 so plots can share axes -------------------------
def eight_gaussians(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """Eight equal Gaussians evenly spaced on a circle."""
    angles = torch.arange(8) * (2 * math.pi / 8)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    return GaussianMixture(means, std)


def ring(radius: float = 2.0, n_components: int = 32, std: float = 0.15) -> GaussianMixture:
    """A thin ring: n_components Gaussians evenly spaced on a circle."""
    angles = torch.arange(n_components) * (2 * math.pi / n_components)
    return GaussianMixture(radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1), std)


def two_moons(n_per_moon: int = 20, std: float = 0.15) -> GaussianMixture:
    """Two interleaved half circles, each n_per_moon Gaussians along the arc."""
    theta = torch.linspace(0, math.pi, n_per_moon)
    upper = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    lower = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
    means = (torch.cat([upper, lower]) - torch.tensor([0.5, 0.25])) * 1.6
    return GaussianMixture(means, std)


def swiss_roll(n_components: int = 80, std: float = 0.12) -> GaussianMixture:
    """A 2-D spiral (r = t for t in [1.5 pi, 4.5 pi]), components equally spaced in arc length."""
    t_fine = torch.linspace(1.5 * math.pi, 4.5 * math.pi, 4000, dtype=torch.float64)
    arc = torch.cumulative_trapezoid(t_fine, t_fine)  # arc length of r = t is ~ integral of t dt
    arc = torch.cat([torch.zeros(1, dtype=arc.dtype), arc])
    t = t_fine[torch.searchsorted(arc, torch.linspace(0, arc[-1].item(), n_components, dtype=arc.dtype))
               .clamp(max=len(t_fine) - 1)]
    means = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) * (2.8 / (4.5 * math.pi))
    return GaussianMixture(means.to(torch.get_default_dtype()), std)


# -- beyond the shared box ----------------------------------------------------------------------
def two_modes(weights=(0.2, 0.8), std: float = 0.5) -> GaussianMixture:
    """Two separated Gaussians at (-2.5, 0) and (2.5, 0) (chapter 6, weights 0.2 / 0.8 by default).

    The mixture of notebook 6b and benchmark 6: with std 0.5 a chain must climb 12.5 nats of -log p
    to cross, so plain Langevin cannot learn the weights. Its tails leave the plotting box [-3.5, 3.5]^2.
    """
    return GaussianMixture(torch.tensor([[-2.5, 0.0], [2.5, 0.0]]), std, weights)
