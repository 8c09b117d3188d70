"""Chapter 6, score matching: fitting s(x) ~ grad_x log p(x) without ever touching the partition function.

A score network s maps (B, D) -> (B, D). The losses below are per example, shape (B,); the caller
averages. Their expectations over the data are, up to constants that do not depend on s:
- Fisher divergence (Eq. (eq-sm-fisher)):    1/2 E_p ||s(x) - grad log p(x)||^2   (needs the true score)
- Hyvarinen (Eq. (eq-sm-hyvarinen)):          E_p [tr(grad_x s(x)) + 1/2 ||s(x)||^2] (exact trace, D backward passes)
- sliced (Eq. (eq-sm-sliced)):                E_p E_v [v^T grad_x s(x) v + 1/2 ||s(x)||^2] (one backward pass per v)
- denoising (Eq. (eq-sm-dsm)):                E_p E_eps 1/2 ||s(x + sigma eps) + eps / sigma||^2
Vincent (2011) calls the Fisher form "explicit" and Hyvarinen's form "implicit" score matching.
"""
import torch
from torch import nn

from .nets import TimeMLP
from .langevin import check_ladder
from .utils import append_dims, check_positive, randn_like


def _check_x(x: torch.Tensor) -> None:
    """Raise ValueError unless x is a floating-point batch (B, D) or (B, C, H, W)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating-point batch (B, D) or (B, C, H, W), got {got}")


def _score_at(score, x: torch.Tensor, name: str = "score") -> torch.Tensor:
    """score(x), checked to have the shape of x."""
    s = score(x)
    if s.shape != x.shape:
        raise ValueError(f"{name}(x) must have the shape of x, {tuple(x.shape)}, got {tuple(s.shape)}")
    return s


def score_from_log_density(log_density):
    """The score x -> grad_x log_density(x) by autograd; an additive log Z drops out. Eq. (eq-sm-z-drops-out)."""
    def score(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return torch.autograd.grad(log_density(x).sum(), x)[0]  # (B, D)
    return score


def fisher_divergence(score, true_score, x: torch.Tensor) -> torch.Tensor:
    """1/2 ||s(x) - grad log p(x)||^2 per example, shape (B,): average over x ~ p. Eq. (eq-sm-fisher)."""
    _check_x(x)
    diff = _score_at(score, x) - _score_at(true_score, x, "true_score")  # (B, D)
    return 0.5 * diff.pow(2).flatten(1).sum(1)


def hyvarinen_loss(score, x: torch.Tensor) -> torch.Tensor:
    """tr(grad_x s(x)) + 1/2 ||s(x)||^2 per example, exact trace by D backward passes. Eq. (eq-sm-hyvarinen)."""
    _check_x(x)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _score_at(score, x)  # (B, D)
        s_flat = s.flatten(1)  # (B, D) for images too: D = C * H * W
        trace = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(s_flat.shape[1]):  # row i of the Jacobian; keep its diagonal entry d s_i / d x_i
            row = torch.autograd.grad(s_flat[:, i].sum(), x, create_graph=True)[0]  # (B, D)
            trace = trace + row.flatten(1)[:, i]
    return trace + 0.5 * s_flat.pow(2).sum(1)


def sliced_loss(score, x: torch.Tensor, generator=None, n_projections: int = 1,
                variance_reduction: bool = True) -> torch.Tensor:
    """v^T grad_x s(x) v + 1/2 ||s||^2 per example, averaged over v ~ N(0, I). Eq. (eq-sm-sliced).

    Song et al. (2019): with variance_reduction=False the second term is 1/2 (v^T s)^2, whose mean
    over v is 1/2 ||s||^2 (SSM); the default uses that mean directly (SSM-VR).
    """
    _check_x(x)
    if not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive int, got {n_projections!r}")
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _score_at(score, x)  # (B, D)
        loss = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_projections):
            v = randn_like(x, generator)  # (B, D), E[v v^T] = I
            # 1. v^T (ds/dx): one vector-Jacobian product; 2. its dot with v estimates tr(ds/dx)
            vJ = torch.autograd.grad((s * v).sum(), x, create_graph=True)[0]  # (B, D)
            s_v = (s * v).flatten(1).sum(1)  # (B,) v^T s
            quadratic = 0.5 * s.pow(2).flatten(1).sum(1) if variance_reduction else 0.5 * s_v**2
            loss = loss + (vJ * v).flatten(1).sum(1) + quadratic
    return loss / n_projections


def dsm_loss(score, x: torch.Tensor, sigma, generator=None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """1/2 ||s(x + sigma eps) + eps / sigma||^2 per example; sigma a float or (B,). Eq. (eq-sm-dsm).

    The target -eps / sigma is the score of N(x_tilde; x, sigma^2 I) at x_tilde = x + sigma eps. Pass
    eps (shape of x) to fix the noise; otherwise it is drawn with `generator`.
    """
    _check_x(x)
    check_positive(sigma, "sigma")
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.shape[0] != x.shape[0]):
        raise ValueError(f"sigma must be a float or have shape (B,)=({x.shape[0]},), got {tuple(sigma.shape)}")
    sigma = append_dims(sigma.expand(x.shape[0]), x.ndim)  # (B, 1) or (B, 1, 1, 1)
    if eps is None:
        eps = randn_like(x, generator)
    elif eps.shape != x.shape:
        raise ValueError(f"eps must have the shape of x, {tuple(x.shape)}, got {tuple(eps.shape)}")
    x_tilde = x + sigma * eps  # (B, D)
    return 0.5 * (_score_at(score, x_tilde) + eps / sigma).pow(2).flatten(1).sum(1)


def ncsn_loss(score, x: torch.Tensor, sigmas, generator=None) -> torch.Tensor:
    """sigma^2-weighted DSM at one random level of the ladder per example, shape (B,). Eq. (eq-sm-annealed).

    score(x, sigma) with sigma (B,); Song & Ermon (2019): lambda(sigma) = sigma^2 makes every level's
    term 1/2 ||sigma s(x_tilde, sigma) + eps||^2 of order one.
    """
    sigmas = check_ladder(sigmas).to(device=x.device, dtype=x.dtype)
    i = torch.randint(len(sigmas), (x.shape[0],), generator=generator).to(x.device)  # (B,) one level each
    sigma = sigmas[i]  # (B,)
    dsm = dsm_loss(lambda xt: score(xt, sigma), x, sigma, generator=generator)
    return sigma**2 * dsm


class NoiseConditionalScore(nn.Module):
    """s(x, sigma) = TimeMLP(x, log sigma) / sigma: a noise-conditional score network (NCSN).

    Dividing by sigma (Song & Ermon 2020) lets the network output a quantity of order one at every
    level, since the true noised score has size ~ 1 / sigma.
    """

    def __init__(self, dim: int, hidden: int = 128, n_hidden: int = 3):
        super().__init__()
        self.net = TimeMLP(dim, hidden=hidden, n_hidden=n_hidden)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        check_positive(sigma, "sigma")
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma  # (B,)
        return self.net(x, torch.log(sigma)) / append_dims(sigma, x.ndim)  # (B, D)


def jacobian_asymmetry(score, x: torch.Tensor) -> torch.Tensor:
    """||(J - J^T) / 2||_F / ||J||_F per example, J = grad_x s(x): 0 for a gradient field, 1 for a pure rotation.

    Eq. (eq-sm-conservative): the share of the Jacobian in its antisymmetric (curl) part.
    """
    _check_x(x)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        s = _score_at(score, x).flatten(1)  # (B, D)
        rows = [torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0].flatten(1) for i in range(s.shape[1])]
    J = torch.stack(rows, 1)  # (B, D, D): J[b, i, j] = d s_i / d x_j
    return torch.linalg.matrix_norm(0.5 * (J - J.transpose(1, 2))) / torch.linalg.matrix_norm(J).clamp_min(1e-12)
