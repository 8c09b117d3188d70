"""Chapter 1: maximum likelihood for a Gaussian (closed form) and for Gaussian mixtures (gradients)."""
import math

import torch
from torch import nn
from torch.nn.functional import softplus

from .train import train
from .utils import check_batch, check_positive_int


def fit_gaussian(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form MLE of a Gaussian: the sample mean (D,) and the 1/N sample covariance (D, D)."""
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"x must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
    mean = x.mean(0)
    diff = x - mean
    return mean, diff.T @ diff / len(x)


class GaussianMixtureModel(nn.Module):
    """A learnable mixture of K full-covariance Gaussians: sum_k softmax(logits)_k N(mu_k, L_k L_k^T).

    Each L_k is lower triangular with a positive diagonal (softplus + min_std), so every covariance
    stays positive definite; `min_std` bounds how far a component can collapse onto one data point,
    where the mixture likelihood is unbounded (Sec. "Gaussian mixtures" of chapter 1).
    """

    def __init__(self, n_components: int, dim: int = 2, init_data: torch.Tensor | None = None,
                 min_std: float = 1e-3, generator: torch.Generator | None = None):
        super().__init__()
        check_positive_int(n_components, "n_components")
        check_positive_int(dim, "dim")
        if init_data is not None:
            check_batch(init_data, dim, "init_data")
            means = kmeans_plus_plus(init_data, n_components, generator)
            std = init_data.std(0).mean().item() / n_components ** (1 / dim)
        else:
            means, std = torch.randn(n_components, dim, generator=generator), 1.0
        self.min_std = min_std
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(means.clone().float())
        raw_diag = math.log(math.expm1(max(std - min_std, 1e-6)))  # inverse softplus
        self.raw_tril = nn.Parameter(torch.diag_embed(torch.full((n_components, dim), raw_diag)))

    def scale_tril(self) -> torch.Tensor:
        """Cholesky factors L_k, shape (K, D, D)."""
        diag = softplus(torch.diagonal(self.raw_tril, dim1=-2, dim2=-1)) + self.min_std  # (K, D) > 0
        return torch.tril(self.raw_tril, -1) + torch.diag_embed(diag)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = logsumexp_k [log pi_k + log N(x; mu_k, L_k L_k^T)], shape (B,)."""
        check_batch(x, self.means.shape[1], "x")
        L = self.scale_tril()  # (K, D, D)
        diff = (x[:, None, :] - self.means).permute(1, 2, 0)  # (K, D, B)
        white = torch.linalg.solve_triangular(L, diff, upper=False)  # (K, D, B): L_k^{-1} (x - mu_k)
        D = x.shape[1]
        log_det = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,): log |L_k|
        log_normal = -0.5 * (white**2).sum(1).T - log_det - 0.5 * D * math.log(2 * math.pi)  # (B, K)
        return torch.logsumexp(torch.log_softmax(self.logits, 0) + log_normal, dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples (n, D): pick a component k ~ pi, then x = mu_k + L_k eps."""
        k = torch.multinomial(torch.softmax(self.logits, 0).cpu(), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], 1, generator=generator).to(self.means)
        k = k.to(self.means.device)
        return self.means[k] + (self.scale_tril()[k] @ eps).squeeze(-1)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k seed points from x (N, D): each next one drawn with probability proportional to its squared
    distance from the nearest seed so far (Arthur & Vassilvitskii, 2007). Spreads the initial means."""
    check_positive_int(k, "k")
    if len(x) < k:
        raise ValueError(f"need at least k={k} points to pick {k} seeds, got {len(x)}")
    x = x.detach().cpu()
    seeds = [x[torch.randint(len(x), (1,), generator=generator)].squeeze(0)]
    d2 = ((x - seeds[0]) ** 2).sum(1)  # (N,) squared distance to the nearest seed
    for _ in range(k - 1):
        seeds.append(x[torch.multinomial(d2 / d2.sum(), 1, generator=generator)].squeeze(0))
        d2 = torch.minimum(d2, ((x - seeds[-1]) ** 2).sum(1))
    return torch.stack(seeds)


def nll(model, x: torch.Tensor) -> torch.Tensor:
    """Per-example negative log-likelihood -log p_theta(x), shape (B,): the loss of maximum likelihood."""
    return -model.log_prob(x)


def fit_mixture(model: GaussianMixtureModel, x_train: torch.Tensor, *, n_steps: int = 600, lr: float = 0.05,
                evaluate=None, every: int | None = None, progress: bool = True) -> list[float]:
    """Full-batch Adam on the mean NLL of x_train (N, D); returns the per-step losses.

    The recipe of notebook 01 and benchmark 1 (build the model with `init_data=x_train`: k-means++ means).
    `evaluate(model, step)` / `every` take snapshots during training, as in `dgm.train.train`.
    """
    return train(model, nll, x_train, n_steps, batch_size=None, lr=lr, evaluate=evaluate, every=every,
                 progress=progress)
