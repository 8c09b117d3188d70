"""Chapter 7, denoising diffusion probabilistic models: discrete schedules, the forward process, its
posterior, L_simple, the DDPM ELBO terms, two samplers (ancestral, DDIM) and the reference recipe
(`EpsNetwork`, `fit_ddpm`, `fit_digits_ddpm`) that notebook 07 and its benchmark share.

Notation as in book/notation.md: x_0 is data and noise grows with t; discrete t = 1..T with beta_t,
alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s, and x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
What chapters 7 and 8 share (the log-SNR, the x_0 / eps / score / v conversions, the data scaling to
[-1, 1]) lives in `dgm.parameterisations`. Batches may have any shape, (B, D) or (B, C, H, W).
"""
import math

import torch
from torch import nn

from .nets import TimeMLP
from .parameterisations import eps_from_score, x0_from_eps
from .train import train
from .utils import append_dims, check_positive_int, check_same_shape, randn_like


# -- discrete schedules: betas for t = 1..T ------------------------------------------------------
def _check_betas(betas) -> torch.Tensor:
    """betas as a 1-D float tensor, ValueError unless every beta_t lies in (0, 1)."""
    betas = torch.as_tensor(betas)
    betas = betas if betas.is_floating_point() else betas.double()
    if betas.ndim != 1 or len(betas) < 1:
        raise ValueError(f"betas must be a 1-D tensor (T,) with T >= 1, got shape {tuple(betas.shape)}")
    if not bool(torch.all((betas > 0) & (betas < 1))):
        raise ValueError(f"every beta_t must lie in (0, 1), got values in [{betas.min().item()}, {betas.max().item()}]")
    return betas


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """beta_t linear from beta_1 to beta_T (Ho et al. 2020), float64, shape (T,). Eq. (eq-ddpm-linear-schedule)."""
    check_positive_int(T, "the number of steps T")
    return _check_betas(torch.linspace(beta_1, beta_T, T, dtype=torch.float64))


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, float64 (T,), cosine alpha_bar. Eq. (eq-ddpm-cosine-schedule).

    alpha_bar_t = f(t) / f(0) with f(t) = cos^2(pi/2 (t/T + s) / (1 + s)), and beta_t clipped at max_beta as in
    Nichol & Dhariwal (2021): the last step would otherwise be beta_T = 1.
    """
    check_positive_int(T, "the number of steps T")
    if not s > 0:
        raise ValueError(f"the offset s must be > 0, got {s}")
    u = torch.arange(T + 1, dtype=torch.float64) / T  # (T + 1,): t / T for t = 0..T
    f = torch.cos(0.5 * math.pi * (u + s) / (1 + s)) ** 2
    return _check_betas((1 - f[1:] / f[:-1]).clamp(max=max_beta))


def alpha_bar(betas) -> torch.Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s), shape (T,). Eq. (eq-ddpm-marginal)."""
    return torch.cumprod(1 - _check_betas(betas), dim=0)


def _at(values, t, x):
    """values[t - 1] for integer steps t (B,) in 1..T, as a (B,) tensor on x's device (in x's dtype if float)."""
    t = torch.as_tensor(t)
    if t.is_floating_point() or t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"t must be an integer tensor of shape (B,)=({x.shape[0]},), got {t.dtype} {tuple(t.shape)}")
    if not bool(torch.all((t >= 1) & (t <= len(values)))):
        raise ValueError(f"t must lie in 1..T = 1..{len(values)}, got values in [{t.min().item()}, {t.max().item()}]")
    return values.to(x.device)[t.to(x.device) - 1].to(x.dtype if x.is_floating_point() else values.dtype)


def _alpha_bar_prev(betas) -> torch.Tensor:
    """alpha_bar_{t-1} for t = 1..T, with alpha_bar_0 = 1, shape (T,)."""
    alpha_bar_t = alpha_bar(betas)
    return torch.cat([alpha_bar_t.new_ones(1), alpha_bar_t[:-1]])


# -- the forward process and its posterior --------------------------------------------------------
def q_step(x_prev, t, betas, eps):
    """One forward step x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps. Eq. (eq-ddpm-forward)."""
    check_same_shape(x_prev, eps, "x_prev", "eps")
    beta = append_dims(_at(_check_betas(betas), t, x_prev), x_prev.ndim)  # (B, 1...)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps


def q_sample(x0, t, betas, eps):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a draw from q(x_t | x_0). Eq. (eq-ddpm-marginal)."""
    check_same_shape(x0, eps, "x0", "eps")
    alpha_bar_t = append_dims(_at(alpha_bar(betas), t, x0), x0.ndim)  # (B, 1...)
    return alpha_bar_t.sqrt() * x0 + (1 - alpha_bar_t).sqrt() * eps


def posterior(x0, xt, t, betas):
    """Mean (shape of x0) and variance (B,) of q(x_{t-1} | x_t, x_0). Eq. (eq-ddpm-posterior)."""
    check_same_shape(x0, xt, "x0", "xt")
    betas = _check_betas(betas)
    beta, alpha_bar_t, alpha_bar_prev = (_at(v, t, x0) for v in (betas, alpha_bar(betas), _alpha_bar_prev(betas)))
    coef_x0 = append_dims(alpha_bar_prev.sqrt() * beta / (1 - alpha_bar_t), x0.ndim)
    coef_xt = append_dims((1 - beta).sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar_t), x0.ndim)
    return coef_x0 * x0 + coef_xt * xt, (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta


def reverse_mean(xt, eps_hat, t, betas):
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_t). Eq. (eq-ddpm-kl-eps)."""
    check_same_shape(xt, eps_hat, "xt", "eps_hat")
    betas = _check_betas(betas)
    beta, alpha_bar_t = (append_dims(_at(v, t, xt), xt.ndim) for v in (betas, alpha_bar(betas)))
    return (xt - beta / (1 - alpha_bar_t).sqrt() * eps_hat) / (1 - beta).sqrt()


def reverse_variance(t, betas, variance: str = "beta"):
    """tau_t^2 of p(x_{t-1} | x_t), (B,): beta_t or tilde beta_t, and beta_1 at t = 1 for both. Eq. (eq-ddpm-ancestral).

    At t = 1, tilde beta_1 = 0 would make the decoder p(x_0 | x_1) a point mass: both choices use the
    Gaussian decoder N(mu_theta(x_1, 1), beta_1 I) there (the L_0 of `elbo_terms`; the sampler returns its mean).
    """
    betas = _check_betas(betas)
    if variance == "beta":
        return _at(betas, t, torch.as_tensor(t))
    if variance == "posterior":  # tilde beta_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t for t >= 2
        tilde = (1 - _alpha_bar_prev(betas)) / (1 - alpha_bar(betas)) * betas
        return _at(torch.cat([betas[:1], tilde[1:]]), t, torch.as_tensor(t))
    raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")


# -- losses --------------------------------------------------------------------------------------
def _eps_hat(eps_model, xt, t):
    """The network's eps prediction, ValueError unless it is a tensor of the shape of x_t."""
    eps_hat = eps_model(xt, t)
    check_same_shape(eps_hat, xt, "eps_model(xt, t)", "xt")
    return eps_hat


def l_simple(eps_model, x0, betas, generator=None):
    """||eps - eps_theta(x_t, t)||^2 per example, t ~ U{1..T}, x_t ~ q(x_t | x_0), shape (B,). Eq. (eq-ddpm-lsimple)."""
    betas = _check_betas(betas)
    t = torch.randint(1, len(betas) + 1, (x0.shape[0],), generator=generator).to(x0.device)  # (B,)
    eps = randn_like(x0, generator)
    eps_hat = _eps_hat(eps_model, q_sample(x0, t, betas, eps), t)
    return ((eps - eps_hat) ** 2).flatten(1).sum(1)


def denoising_kl(eps, eps_hat, t, betas, variance: str = "beta"):
    """KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), t >= 2, as weighted eps-MSE + const, (B,). Eq. (eq-ddpm-kl-eps).

    t = 1 is not a denoising term (it is the reconstruction term L_0 of `elbo_terms`): ValueError.
    """
    check_same_shape(eps, eps_hat, "eps", "eps_hat")
    betas = _check_betas(betas)
    beta, alpha_bar_t = _at(betas, t, eps), _at(alpha_bar(betas), t, eps)  # (B,)
    if bool(torch.any(torch.as_tensor(t) < 2)):
        raise ValueError("denoising_kl needs every t >= 2 (t = 1 is the reconstruction term L_0, "
                         f"see elbo_terms), got t down to {torch.as_tensor(t).min().item()}")
    var_q = _at((1 - _alpha_bar_prev(betas)) / (1 - alpha_bar(betas)) * betas, t, eps)  # tilde beta_t
    var_p = reverse_variance(t, betas, variance).to(eps)  # tau_t^2
    weight = beta**2 / (2 * var_p * (1 - beta) * (1 - alpha_bar_t))
    r, D = var_q / var_p, eps[0].numel()
    return weight * ((eps - eps_hat) ** 2).flatten(1).sum(1) + 0.5 * D * (r - 1 - torch.log(r))


def elbo_terms(eps_model, x0, betas, generator=None, variance: str = "beta"):
    """The negative ELBO's three per-example terms (nats, (B,) each; their sum is -ELBO). Eq. (eq-ddpm-elbo).

    reconstruction = -log p(x_0 | x_1) with the Gaussian decoder N(mu_theta(x_1, 1), beta_1 I) (both
    variance choices); prior = KL(q(x_T | x_0) || N(0, I)); denoising = sum_{t=2}^T KL(q(x_{t-1} | x_t, x_0)
    || p(x_{t-1} | x_t)), one x_t ~ q(x_t | x_0) per t (T network calls).
    """
    betas = _check_betas(betas)
    T, B, D = len(betas), x0.shape[0], x0[0].numel()
    alpha_bar_T = alpha_bar(betas)[-1].item()  # KL(N(m, v I) || N(0, I)) = (||m||^2 + D (v - 1 - log v)) / 2
    prior = 0.5 * (alpha_bar_T * (x0**2).flatten(1).sum(1) + D * (-alpha_bar_T - math.log(1 - alpha_bar_T)))
    denoising = torch.zeros(B, dtype=x0.dtype, device=x0.device)
    for step in range(2, T + 1):
        t = torch.full((B,), step, dtype=torch.long, device=x0.device)
        eps = randn_like(x0, generator)
        eps_hat = _eps_hat(eps_model, q_sample(x0, t, betas, eps), t)
        denoising = denoising + denoising_kl(eps, eps_hat, t, betas, variance)
    t = torch.ones(B, dtype=torch.long, device=x0.device)
    x1 = q_sample(x0, t, betas, randn_like(x0, generator))
    var = betas[0].item()
    mean = reverse_mean(x1, _eps_hat(eps_model, x1, t), t, betas)
    reconstruction = 0.5 * ((x0 - mean) ** 2).flatten(1).sum(1) / var + 0.5 * D * math.log(2 * math.pi * var)
    return dict(reconstruction=reconstruction, prior=prior, denoising=denoising)


# -- samplers: short loops from x_T ~ N(0, I) down to x_0 ----------------------------------------
@torch.no_grad()
def ancestral_sample(eps_model, shape, betas, *, generator=None, device=None, dtype=None, variance: str = "beta",
                     return_path: bool = False):
    """Ho et al. (2020), Algorithm 2: x_{t-1} = mu_theta(x_t, t) + tau_t z for t = T..1. Eq. (eq-ddpm-ancestral).

    Returns x_0 of the given shape (on `device`, in `dtype`; default CPU and the default dtype) and,
    with return_path=True, the list [x_T, ..., x_0].
    """
    betas = _check_betas(betas)
    x = torch.randn(shape, generator=generator, dtype=dtype).to(device)  # x_T ~ N(0, I)
    path = [x]
    for step in range(len(betas), 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        # 1. predict the noise and form the reverse mean, Eq. (eq-ddpm-kl-eps)
        mean = reverse_mean(x, _eps_hat(eps_model, x, t), t, betas)
        # 2. add fresh noise of variance tau_t^2, none at the last step (t = 1: return the decoder's mean)
        tau = append_dims(reverse_variance(t, betas, variance).to(x).sqrt(), x.ndim)
        x = mean + tau * randn_like(x, generator) if step > 1 else mean
        path.append(x)
    return (x, path) if return_path else x


@torch.no_grad()
def ddim_sample(eps_model, shape, betas, n_steps: int, *, eta: float = 0.0, generator=None, device=None, dtype=None,
                return_path: bool = False):
    """DDIM (Song et al. 2021, their Eq. 12) on n_steps of 1..T; eta = 0 deterministic. Eq. (eq-ddpm-ancestral)."""
    betas = _check_betas(betas)
    T = len(betas)
    check_positive_int(n_steps, "n_steps")
    if n_steps > T:
        raise ValueError(f"n_steps must be an int in 1..T = 1..{T}, got {n_steps!r}")
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    ts = torch.linspace(T, 1, n_steps, dtype=torch.float64).round().long().tolist() + [0]  # decreasing, ends at 0
    alpha_bars = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar(betas).double()])  # [t]: alpha_bar_t
    x = torch.randn(shape, generator=generator, dtype=dtype).to(device)  # x_T ~ N(0, I)
    path = [x]
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        a_cur, a_next = alpha_bars[t_cur].item(), alpha_bars[t_next].item()
        # 1. predict the noise and the clean point x0_hat
        eps_hat = _eps_hat(eps_model, x, torch.full((x.shape[0],), t_cur, dtype=torch.long, device=x.device))
        x0_hat = x0_from_eps(x, eps_hat, a_cur**0.5, (1 - a_cur) ** 0.5)
        # 2. the noise level of the step: sigma = eta sqrt((1 - a_next) / (1 - a_cur)) sqrt(1 - a_cur / a_next)
        sigma = eta * ((1 - a_next) / (1 - a_cur) * (1 - a_cur / a_next)) ** 0.5
        # 3. jump to t_next: re-noise x0_hat along the predicted direction, plus fresh noise
        x = a_next**0.5 * x0_hat + max(1 - a_next - sigma**2, 0.0) ** 0.5 * eps_hat
        x = x + sigma * randn_like(x, generator) if sigma > 0 else x
        path.append(x)
    return (x, path) if return_path else x


def exact_eps_model(mixture, betas):
    """Exact eps_hat(x_t, t) = E[eps | x_t] = -sigma_t grad log q_t(x_t) of a mixture. Eq. (eq-ddpm-eps-score)."""
    alpha_bars = alpha_bar(betas)

    def eps_model(xt, t):
        alpha_bar_t = _at(alpha_bars, t, xt)  # (B,)
        alpha, sigma = alpha_bar_t.sqrt(), (1 - alpha_bar_t).sqrt()
        return eps_from_score(mixture.noised_score(xt, alpha, sigma), sigma)
    return eps_model


# -- the reference recipe of notebook 07 and benchmarks/ch07_ddpm.py ------------------------------
class EpsNetwork(nn.Module):
    """eps_theta(x_t, t): (B, dim), integer steps (B,) in 1..T -> (B, dim), a `TimeMLP` that sees t / T."""

    def __init__(self, dim: int, T: int = 1000, hidden: int = 128, n_hidden: int = 3):
        super().__init__()
        check_positive_int(T, "the number of steps T")
        self.T = T
        self.net = TimeMLP(dim, hidden=hidden, n_hidden=n_hidden)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(xt, t / self.T)


def fit_ddpm(net: nn.Module, data, betas, *, n_steps: int = 2000, batch_size: int = 256, lr: float = 1e-2,
             generator=None, progress: bool = True) -> list[float]:
    """L_simple, Adam, learning rate cosine-decayed to 0: notebook 07's toy recipe (two moons). Eq. (eq-ddpm-lsimple).

    `net(xt, t)` is an eps-model (e.g. `EpsNetwork`); `data` a tensor (N, ...) or a sampler data(n);
    returns the loss of every step.
    """
    def loss(model, x0):
        return l_simple(model, x0, betas, generator=generator)
    return train(net, loss, data, n_steps, batch_size, lr=lr, cosine=True, generator=generator, progress=progress)


def fit_digits_ddpm(net: nn.Module, x_train: torch.Tensor, betas, *, n_steps: int = 2000, batch_size: int = 128,
                    lr: float = 5e-3, generator=None, progress: bool = True) -> list[float]:
    """`fit_ddpm` with notebook 07's digits budget: `to_grid` images (N, 64), EpsNetwork(64, hidden=256)."""
    return fit_ddpm(net, x_train, betas, n_steps=n_steps, batch_size=batch_size, lr=lr, generator=generator,
                    progress=progress)
