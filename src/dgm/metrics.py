"""How the book judges a model: KL to an exact density, a two-sample distance with its floor, bits/dim."""
import math

import torch

from .utils import Estimate, check_batch, check_positive_int


@torch.no_grad()
def kl_divergence(p, log_q, x: torch.Tensor | None = None, n: int = 20_000,
                  generator: torch.Generator | None = None) -> Estimate:
    """KL(p || q) = E_p[-log q(x)] - H(p) on test points x ~ p (Eq. (eq-ml-nll-entropy-kl)).

    `p` has an exact `log_prob` and `sample` (a `dgm.data.GaussianMixture`); `log_q` maps (B, D) -> (B,).
    Both terms are averaged over the same points, so the standard error is that of log p - log q.
    """
    x = p.sample(n, generator) if x is None else x
    check_batch(x, p.dim, "x")
    log_q_x = log_q(x)
    if log_q_x.shape != (x.shape[0],):
        raise ValueError(f"log_q must return shape (B,)=({x.shape[0]},), got {tuple(log_q_x.shape)}")
    return Estimate(p.log_prob(x) - log_q_x)


@torch.no_grad()
def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (V-statistic, >= 0) between two samples."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    if x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"need two samples (n, D), (m, D) with n, m >= 2, got {tuple(x.shape)}, {tuple(y.shape)}")
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def energy_distance_floor(sample, n: int, repeats: int = 10) -> Estimate:
    """The distance of data to itself: energy_distance between two fresh size-n samples, `repeats` times.

    `sample(n)` draws n data points. A model's energy distance (same n) is judged against this floor.
    """
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to give a standard error, got {repeats}")
    return Estimate(torch.tensor([energy_distance(sample(n), sample(n)) for _ in range(repeats)]))


def bits_per_dim(nats: float | torch.Tensor, dim: int):
    """Convert a negative log-likelihood in nats per example to bits per dimension: nats / (D ln 2)."""
    check_positive_int(dim, "dim")
    return nats / (dim * math.log(2))
