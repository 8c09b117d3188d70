"""Chapter 6, score matching: fitting s(x) ~ grad_x log p(x) without ever touching the partition function.

A score network s maps (B, D) -> (B, D). The losses below are per example, shape (B,); the caller
averages. Their expectations over the data are, up to constants that do not depend on s:
- Fisher divergence (Eq. (eq-sm-fisher)):    1/2 E_p ||s(x) - grad log p(x)||^2   (needs the true score)
- Hyvarinen (Eq. (eq-sm-hyvarinen)):          E_p [tr(grad_x s(x)) + 1/2 ||s(x)||^2] (exact trace, D backward passes)
- sliced (Eq. (eq-sm-sliced)):                E_p E_v [v^T grad_x s(x) v + 1/2 ||s(x)||^2] (one backward pass per v)
- denoising (Eq. (eq-sm-dsm)):                E_p E_eps 1/2 ||s(x + sigma eps) + eps / sigma||^2
Vincent (2011) calls the Fisher form "explicit" and Hyvarinen's form "implicit" score matching.

The recipe of notebooks 06a/06b and benchmark 6: `score_mlp` trained by `fit_score` on any of the three
objectives, and `NoiseConditionalScore` trained by `fit_ncsn` over a noise ladder.
"""
import torch
from torch import nn

from .langevin import check_ladder
from .nets import MLP, TimeMLP
from .train import train
from .utils import append_dims, check_positive, check_positive_int, check_same_shape, per_example, randn_like


def _check_x(x: torch.Tensor) -> None:
    """Raise ValueError unless x is a floating-point batch (B, D) or (B, C, H, W)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating-point batch (B, D) or (B, C, H, W), got {got}")


def _score_at(score, x: torch.Tensor, name: str = "score", x_name: str = "x") -> torch.Tensor:
    """score(x), checked to have the shape of x (no silent broadcasting); the message names both shapes."""
    s = score(x)
    check_same_shape(s, x, f"{name}({x_name})", x_name)
    return s


def score_from_log_density(log_density):
    """The score x -> grad_x log_density(x) by autograd, (B, D) -> (B, D); log Z drops out. Eq. (eq-sm-z-drops-out).

    Differentiable when gradients are enabled (create_graph=True, x's graph kept): the Hyvarinen loss
    can take its Jacobian, and the DSM loss on it trains log_density's parameters (an EBM's energy).
    """
    def score(x: torch.Tensor) -> torch.Tensor:
        create_graph = torch.is_grad_enabled()  # no graph under torch.no_grad(): a cheap sampler score
        with torch.enable_grad():
            x_in = x if x.requires_grad else x.detach().requires_grad_(True)  # keep a graph through x
            return torch.autograd.grad(log_density(x_in).sum(), x_in, create_graph=create_graph)[0]  # (B, D)
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
    check_positive_int(n_projections, "n_projections")
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
    sigma = per_example(sigma, x, "sigma", broadcast=True)  # (B, 1) or (B, 1, 1, 1)
    if eps is None:
        eps = randn_like(x, generator)
    check_same_shape(eps, x, "eps", "x")
    x_tilde = x + sigma * eps  # (B, D)
    return 0.5 * (_score_at(score, x_tilde, x_name="x_tilde") + eps / sigma).pow(2).flatten(1).sum(1)


def ncsn_loss(score, x: torch.Tensor, sigmas, generator=None) -> torch.Tensor:
    """sigma^2-weighted DSM at one random level of the ladder per example, shape (B,). Eq. (eq-sm-annealed).

    score(x, sigma) with sigma (B,); Song & Ermon (2019): lambda(sigma) = sigma^2 makes every level's
    term 1/2 ||sigma s(x_tilde, sigma) + eps||^2 of order one.
    """
    _check_x(x)
    sigmas = check_ladder(sigmas).to(device=x.device, dtype=x.dtype)
    i = torch.randint(len(sigmas), (x.shape[0],), generator=generator).to(x.device)  # (B,) one level each
    sigma = sigmas[i]  # (B,)

    def score_at_level(x_tilde):  # score(x_tilde, sigma), checked before dsm_loss sees it
        s = score(x_tilde, sigma)
        check_same_shape(s, x_tilde, "score(x_tilde, sigma)", "x_tilde")
        return s

    return sigma**2 * dsm_loss(score_at_level, x, sigma, generator=generator)


class NoiseConditionalScore(nn.Module):
    """s(x, sigma) = TimeMLP(x, log sigma) / sigma, (B, D) -> (B, D): a noise-conditional score network (NCSN).

    Dividing by sigma (Song & Ermon 2020) lets the network output a quantity of order one at every
    level, since the true noised score has size ~ 1 / sigma (Eq. (eq-sm-annealed)). Its defaults are
    the network of notebook 06b and benchmark 6.
    """

    def __init__(self, dim: int, hidden: int = 128, n_hidden: int = 3):
        super().__init__()
        self.net = TimeMLP(dim, hidden=hidden, n_hidden=n_hidden)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        check_positive(sigma, "sigma")
        sigma = per_example(sigma, x, "sigma")  # (B,)
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


# -- the recipe of notebooks 06a / 06b and benchmark 6 ---------------------------------------------
def score_mlp(dim: int = 2, hidden: int = 128, n_hidden: int = 2) -> MLP:
    """The score network of notebook 06a: an MLP (B, dim) -> (B, dim), 2 hidden layers of 128 SiLU units."""
    return MLP(dim, dim, hidden=hidden, n_hidden=n_hidden)


def fit_score(net, loss_fn, data, *, n_steps: int = 1500, batch_size: int = 256, lr: float = 5e-3,
              generator=None, evaluate=None, every=None, progress: bool = True) -> list[float]:
    """Minimise loss_fn(net, x) (Hyvarinen, sliced or DSM) with Adam and a cosine-decayed lr: the recipe of 06a.

    `data` is a tensor (N, D) or a sampler data(batch_size) (fresh exact samples, as in the notebook and
    the benchmark); evaluate/every as in `dgm.train.train`. Returns the loss of every step.
    """
    return train(net, loss_fn, data, n_steps, batch_size, lr=lr, cosine=True, evaluate=evaluate, every=every,
                 generator=generator, progress=progress)


def fit_ncsn(net, data, sigmas, *, n_steps: int = 1000, batch_size: int = 256, lr: float = 5e-3,
             generator=None, evaluate=None, every=None, progress: bool = True) -> list[float]:
    """Train score(x, sigma) by ncsn_loss over the ladder, Adam with a cosine-decayed lr: the recipe of 06b.

    Eq. (eq-sm-annealed); `generator` draws the levels and the noise (and minibatches of a tensor `data`).
    """
    sigmas = check_ladder(sigmas)
    return train(net, lambda m, x: ncsn_loss(m, x, sigmas, generator=generator), data, n_steps, batch_size,
                 lr=lr, cosine=True, evaluate=evaluate, every=every, generator=generator, progress=progress)
