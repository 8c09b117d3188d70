"""Chapter 8, variational diffusion models (Kingma et al. 2021): the continuous-time ELBO in three terms.

For data x_0 (values on a grid of `levels` in [-1, 1], or continuous data with levels=None) and
x_t = alpha_t x_0 + sigma_t eps with log-SNR lambda_t = log(alpha_t^2 / sigma_t^2) falling in t,
-log p(x_0) <= prior + diffusion + reconstruction, per example, in nats:
  prior           KL(q(x_1 | x_0) || N(0, I))                                    Eq. (eq-vdm-prior)
  diffusion       -1/2 E_t[lambda'(t) e^lambda_t ||x_0 - x_hat(x_t; lambda_t)||^2]  Eq. (eq-vdm-continuous-loss)
  reconstruction  E_q[-log p(x_0 | x0_tilde)], a decoder over the grid values     Eq. (eq-vdm-reconstruction)
where x0_tilde is the latent at t = 0 (the page's tilde x_0). The conversions, the log-SNR schedules (the
learned one too) and the grid live in `dgm.parameterisations`. A denoiser is a function denoise_fn(xt (B, ...),
log_snr (B,)) -> x_hat (B, ...): it sees the log-SNR, not t, so that only the schedule's endpoints
matter (Thm. (thm-vdm-invariance)). Every function takes batches of any shape, (B, D) or (B, C, H, W).
"""
import math

import torch
from torch import nn

from .digits import pixel_log_marginals
from .nets import TimeMLP
from .parameterisations import (
    LOG_SNR_MAX,
    LOG_SNR_MIN,
    LearnedSchedule,
    alpha_sigma,
    check_time,
    grid_values,
    to_grid,
    x0_from_eps,
)
from .train import train
from .utils import append_dims, check_levels, check_positive_int, check_same_shape, per_example
from .variational import gumbel_max


def _sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the batch axis: (B, ...) -> (B,)."""
    return x.flatten(1).sum(1)


def low_discrepancy_times(n: int, generator=None, device=None) -> torch.Tensor:
    """t_i = (u + i / n) mod 1, one uniform u for the batch: each t uniform, the batch evenly spread (VDM)."""
    check_positive_int(n, "n")
    u = torch.rand((), generator=generator)
    return ((u + torch.arange(n) / n) % 1.0).to(device)


# -- the three terms --------------------------------------------------------------------------
def prior_term(x0: torch.Tensor, log_snr_1) -> torch.Tensor:
    """KL(N(alpha_1 x_0, sigma_1^2 I) || N(0, I)) = 1/2 sum(sigma_1^2 + alpha_1^2 x_0^2 - log sigma_1^2 - 1), (B,).

    Eq. (eq-vdm-prior)."""
    log_snr_1 = per_example(log_snr_1, x0, "log_snr_1", broadcast=True)
    alpha2, sigma2 = torch.sigmoid(log_snr_1), torch.sigmoid(-log_snr_1)
    return 0.5 * _sum(sigma2 + alpha2 * x0**2 - torch.log(sigma2) - 1)


def decoder_log_probs(x0_tilde: torch.Tensor, log_snr_0, levels: int = 17) -> torch.Tensor:
    """log p(x_0,i = v_k | x0_tilde) for the grid values v_k, shape (B, ..., levels). Eq. (eq-vdm-reconstruction).

    p(x_0,i = v | x0_tilde) is proportional to N(x0_tilde_i; alpha_0 v, sigma_0^2): Bayes' rule with a uniform
    prior on the grid, logits -1/2 e^lambda_0 (x0_tilde / alpha_0 - v)^2.
    """
    log_snr_0 = per_example(log_snr_0, x0_tilde, "log_snr_0", broadcast=True)
    alpha_0, _ = alpha_sigma(log_snr_0)
    v = grid_values(levels, x0_tilde.device, x0_tilde.dtype)  # (levels,)
    logits = -0.5 * torch.exp(log_snr_0)[..., None] * (x0_tilde / alpha_0)[..., None].sub(v) ** 2  # (B, ..., levels)
    return torch.log_softmax(logits, dim=-1)


def reconstruction_term(x0: torch.Tensor, x0_tilde: torch.Tensor, log_snr_0, levels: int | None = 17) -> torch.Tensor:
    """-log p(x_0 | x0_tilde), (B,), on the grid (levels=None: N(x_0; x0_tilde/alpha_0, e^-lambda_0)).

    Eq. (eq-vdm-reconstruction)."""
    check_same_shape(x0, x0_tilde, "x0", "x0_tilde")
    if levels is None:
        log_snr_0 = per_example(log_snr_0, x0_tilde, "log_snr_0", broadcast=True)
        var = torch.exp(-log_snr_0).expand_as(x0)
        return 0.5 * _sum((x0 - x0_tilde / alpha_sigma(log_snr_0)[0]) ** 2 / var + torch.log(2 * math.pi * var))
    k = torch.round((x0 + 1) / 2 * (levels - 1)).long()
    if not torch.allclose(x0, grid_values(levels, x0.device, x0.dtype)[k.clamp(0, levels - 1)], atol=1e-5):
        raise ValueError(f"x0 must lie on the grid of {levels} values in [-1, 1] (use to_grid), "
                         f"got values in [{x0.min().item():.3g}, {x0.max().item():.3g}] off the grid")
    return -_sum(decoder_log_probs(x0_tilde, log_snr_0, levels).gather(-1, k[..., None])[..., 0])


def factorised_denoiser(xt, log_snr, log_probs) -> torch.Tensor:
    """Exact E[x_0 | x_t] (B, ...) for independent pixels with laws exp(log_probs) (..., levels): Bayes' rule per pixel.

    r_k proportional to q_i(v_k) N(x_t; alpha v_k, sigma^2), x_hat = sum_k r_k v_k. Eq. (eq-vdm-tweedie).
    """
    log_snr = per_example(log_snr, xt, "log_snr", broadcast=True)
    alpha, _ = alpha_sigma(log_snr)
    v = grid_values(log_probs.shape[-1], xt.device, xt.dtype)  # (levels,)
    logits = log_probs - 0.5 * torch.exp(log_snr)[..., None] * ((xt / alpha)[..., None] - v) ** 2  # (B, ..., levels)
    return torch.softmax(logits, dim=-1) @ v


def diffusion_integrand(x0, x_hat, log_snr, dlog_snr_dt) -> torch.Tensor:
    """-1/2 lambda'(t) e^lambda ||x_0 - x_hat||^2 at per-example t, (B,). Eq. (eq-vdm-continuous-loss)."""
    check_same_shape(x0, x_hat, "x0", "x_hat")
    return -0.5 * dlog_snr_dt * torch.exp(log_snr) * _sum((x0 - x_hat) ** 2)


def _denoise(denoise_fn, xt, log_snr):
    """The denoiser's x_hat, ValueError unless it is a tensor of the shape of x_t."""
    x_hat = denoise_fn(xt, log_snr)
    check_same_shape(x_hat, xt, "denoise_fn(xt, log_snr)", "xt")
    return x_hat


def log_snr_and_slope(log_snr_fn, t: torch.Tensor):
    """lambda(t) and d lambda / dt (autograd), each (B,); ValueError where lambda increases."""
    check_time(t)
    keep_graph = torch.is_grad_enabled()  # training: d lambda/dt must be differentiable in the schedule
    with torch.enable_grad():
        t = t.detach().requires_grad_(True)
        log_snr = log_snr_fn(t)
        (slope,) = torch.autograd.grad(log_snr.sum(), t, create_graph=keep_graph)
    if bool(torch.any(slope > 0)):
        raise ValueError("the log-SNR must decrease in t (noise grows with t), "
                         f"got d lambda/dt up to {slope.max().item():.3g}")
    return (log_snr, slope) if keep_graph else (log_snr.detach(), slope.detach())


def vdm_terms(x0, denoise_fn, log_snr_fn, generator=None, levels: int | None = 17,
              low_discrepancy: bool = True, t=None, eps=None) -> dict:
    """dict(prior, diffusion, reconstruction) of the -ELBO, each (B,) in nats. Eq. (eq-vdm-bpd).

    log_snr_fn(t (B,)) -> lambda (B,), decreasing. The diffusion term is one Monte Carlo draw of
    t ~ U[0, 1] per example (low-discrepancy over the batch by default); t (B,) and eps (shape of x0) may be given.
    """
    B = x0.shape[0]
    # 1. a time and a noise per example
    t = (low_discrepancy_times(B, generator, x0.device) if low_discrepancy else
         torch.rand(B, generator=generator).to(x0.device)) if t is None else per_example(t, x0, "t")
    eps = torch.randn(x0.shape, generator=generator).to(x0) if eps is None else eps
    check_same_shape(eps, x0, "eps", "x0")
    # 2. the schedule at t and at the endpoints
    log_snr, slope = log_snr_and_slope(log_snr_fn, t.to(x0.dtype))
    log_snr_ends = log_snr_fn(torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device))  # (lambda_0, lambda_1)
    # 3. diffuse, denoise, and weigh the squared error by -lambda' e^lambda / 2
    alpha, sigma = alpha_sigma(append_dims(log_snr, x0.ndim))
    x_hat = _denoise(denoise_fn, alpha * x0 + sigma * eps, log_snr)
    diffusion = diffusion_integrand(x0, x_hat, log_snr, slope)
    # 4. the two ends: prior matching at t = 1, reconstruction from x0_tilde at t = 0
    alpha_0, sigma_0 = alpha_sigma(log_snr_ends[0])
    recon = reconstruction_term(x0, alpha_0 * x0 + sigma_0 * eps, log_snr_ends[0], levels)
    return dict(prior=prior_term(x0, log_snr_ends[1]), diffusion=diffusion, reconstruction=recon)


def q_posterior(x0, xt, log_snr_s, log_snr_t):
    """q(x_s | x_t, x_0), s < t: mean (1-c) (alpha_s/alpha_t) x_t + c alpha_s x_0, var c sigma_s^2, c = 1 - SNR_t/SNR_s.

    Eq. (eq-vdm-posterior); the variance is (B, 1, ..., 1)."""
    check_same_shape(x0, xt, "x0", "xt")
    log_snr_s = per_example(log_snr_s, xt, "log_snr_s", broadcast=True)
    log_snr_t = per_example(log_snr_t, xt, "log_snr_t", broadcast=True)
    c = -torch.expm1(log_snr_t - log_snr_s)  # 1 - SNR_t / SNR_s, in (0, 1] when s < t
    (alpha_s, sigma_s), (alpha_t, _) = alpha_sigma(log_snr_s), alpha_sigma(log_snr_t)
    return (1 - c) * (alpha_s / alpha_t) * xt + c * alpha_s * x0, c * sigma_s**2


def discrete_diffusion_loss(x0, denoise_fn, log_snr_fn, T: int, generator=None, i=None, eps=None) -> torch.Tensor:
    """L_T = T E_i[(SNR(s) - SNR(t)) ||x_0 - x_hat(x_t)||^2 / 2], s, t = (i-1)/T, i/T, (B,).

    Eq. (eq-vdm-discrete-loss)."""
    check_positive_int(T, "T")
    B = x0.shape[0]
    i = torch.randint(1, T + 1, (B,), generator=generator).to(x0.device) if i is None else torch.as_tensor(i)
    if i.shape != (B,) or i.is_floating_point() or bool(torch.any((i < 1) | (i > T))):
        raise ValueError(f"i must be integer steps in 1..T = 1..{T} of shape ({B},), got {i.dtype} {tuple(i.shape)}")
    eps = torch.randn(x0.shape, generator=generator).to(x0) if eps is None else eps
    check_same_shape(eps, x0, "eps", "x0")
    log_snr_s, log_snr_t = log_snr_fn((i - 1).to(x0.dtype) / T), log_snr_fn(i.to(x0.dtype) / T)
    alpha, sigma = alpha_sigma(append_dims(log_snr_t, x0.ndim))
    x_hat = _denoise(denoise_fn, alpha * x0 + sigma * eps, log_snr_t)
    snr_gap = -torch.exp(log_snr_s) * torch.expm1(log_snr_t - log_snr_s)  # SNR(s) - SNR(t) > 0
    return T * 0.5 * snr_gap * _sum((x0 - x_hat) ** 2)


@torch.no_grad()
def ancestral_sample(denoise_fn, shape, log_snr_fn, n_steps: int = 200, *, generator=None, device=None, dtype=None,
                     return_path: bool = False):
    """x0_tilde (the latent at t = 0) from x_1 ~ N(0, I) by p(x_s | x_t) = q(x_s | x_t, x_0 = x_hat(x_t)).

    n_steps on a uniform grid in t; returns a tensor of the given shape and, with return_path=True, the
    list [x_1, ..., x0_tilde]. Eq. (eq-vdm-posterior).
    """
    check_positive_int(n_steps, "n_steps")
    ts = torch.linspace(1.0, 0.0, n_steps + 1, device=device, dtype=dtype)
    log_snrs = log_snr_fn(ts)  # (n_steps + 1,): one schedule evaluation for the whole grid
    x = torch.randn(shape, generator=generator, dtype=dtype).to(device)  # x_1 ~ N(0, I)
    path = [x]
    for lam_t, lam_s in zip(log_snrs[:-1], log_snrs[1:]):
        # 1. denoise at the current noise level; 2. draw from the forward posterior at x_0 = x_hat
        x_hat = _denoise(denoise_fn, x, lam_t.expand(shape[0]))
        mean, var = q_posterior(x_hat, x, lam_s, lam_t)
        x = mean + var.sqrt() * torch.randn(shape, generator=generator, dtype=dtype).to(device)
        path.append(x)
    return (x, path) if return_path else x


class VDM(nn.Module):
    """Continuous-time VDM for images of `dim` pixels on a grid of `levels`: a learned schedule and an eps-model.

    Images may come flat (B, dim) or shaped (B, C, H, W) with C H W = dim; the network sees them flat.
    """

    def __init__(self, dim: int = 64, levels: int = 17, hidden: int = 256, n_hidden: int = 3,
                 log_snr_min: float = LOG_SNR_MIN, log_snr_max: float = LOG_SNR_MAX, log_probs=None):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim, self.levels = dim, levels
        self.net = TimeMLP(dim, hidden=hidden, n_hidden=n_hidden)
        nn.init.zeros_(self.net.net[-1].weight)  # correction 0: the model starts as independent pixels
        nn.init.zeros_(self.net.net[-1].bias)
        self.schedule = LearnedSchedule(log_snr_min, log_snr_max)
        uniform = torch.full((dim, levels), -math.log(levels))
        log_probs = uniform if log_probs is None else torch.as_tensor(log_probs).clone()
        if log_probs.shape != (dim, levels):
            raise ValueError(f"log_probs must have shape (dim, levels) = ({dim}, {levels}), "
                             f"got {tuple(log_probs.shape)}")
        self.register_buffer("log_probs", log_probs)

    def _check_images(self, x: torch.Tensor) -> None:
        check_levels(x, self.levels, "x")
        if x.ndim < 2 or x[0].numel() != self.dim:
            raise ValueError(f"x must be a batch of images of {self.dim} pixels, (B, {self.dim}) or (B, C, H, W), "
                             f"got shape {tuple(x.shape)}")

    def eps_hat(self, xt: torch.Tensor, log_snr) -> torch.Tensor:
        """eps of the independent-pixel Bayes denoiser plus the network's correction, shape of x_t.

        The network sees x_base = E_q[x_0 | x_t] under independent pixels (a per-pixel, increasing function
        of x_t: nothing is lost, and the grid is already built in) and lambda rescaled to about [0, 1].
        """
        log_snr = per_example(log_snr, xt, "log_snr")  # (B,)
        alpha, sigma = alpha_sigma(append_dims(log_snr, xt.ndim))
        x_base = factorised_denoiser(xt, log_snr, self.log_probs.view(*xt.shape[1:], self.levels))
        correction = self.net(x_base.flatten(1), (LOG_SNR_MAX - log_snr) / (LOG_SNR_MAX - LOG_SNR_MIN))
        return (xt - alpha * x_base) / sigma + correction.view_as(xt)

    def denoise(self, xt: torch.Tensor, log_snr) -> torch.Tensor:
        """x_hat = (x_t - sigma eps_hat) / alpha, shape of x_t. Eq. (eq-vdm-parameterisations)."""
        log_snr = per_example(log_snr, xt, "log_snr")
        return x0_from_eps(xt, self.eps_hat(xt, log_snr), *alpha_sigma(log_snr))

    def terms(self, x: torch.Tensor, generator=None) -> dict:
        """-ELBO of integer images x (B, ...) as dict(prior, diffusion, reconstruction), each (B,) in nats.

        Same terms as `vdm_terms`, with the diffusion term in its eps form -1/2 lambda'(t) ||eps - eps_hat||^2.
        When training, the schedule's shape receives the gradient of E[L_diffusion^2] instead of E[L]:
        the ELBO does not depend on the shape (Thm. (thm-vdm-invariance)), its variance does (VDM, App. I.2).
        """
        self._check_images(x)
        dtype = self.schedule.log_snr_max.dtype
        x0 = to_grid(x, self.levels).to(dtype)
        # 1. times and noise; the schedule's shape s(t) and slope s'(t)
        t = low_discrepancy_times(x.shape[0], generator, x.device).to(dtype)
        eps = torch.randn(x0.shape, generator=generator).to(x0)
        s, ds = self.schedule.shape(t)
        lam_max, lam_min = self.schedule.log_snr_max, self.schedule.log_snr_min
        log_snr, slope = lam_max + (lam_min - lam_max) * s, (lam_min - lam_max) * ds  # (B,), (B,); slope < 0
        # 2. the diffusion term in eps form
        alpha, sigma = alpha_sigma(append_dims(log_snr, x0.ndim))
        eps_hat = self.eps_hat(alpha * x0 + sigma * eps, log_snr)
        diffusion = -0.5 * slope * _sum((eps - eps_hat) ** 2)
        # 3. variance reduction: scale the gradient reaching s and s' by 2 L (d L^2 = 2 L dL), per example
        if s.requires_grad:
            scale = 2 * diffusion.detach()
            s.register_hook(lambda grad: grad * scale)
            ds.register_hook(lambda grad: grad * scale)
        # 4. prior and reconstruction at the learned endpoints
        alpha_0, sigma_0 = alpha_sigma(lam_max)
        recon = reconstruction_term(x0, alpha_0 * x0 + sigma_0 * eps, lam_max, self.levels)
        return dict(prior=prior_term(x0, lam_min), diffusion=diffusion, reconstruction=recon)

    @torch.no_grad()
    def nll_bound(self, x: torch.Tensor, repeats: int = 16, generator=None) -> dict:
        """The three terms of each image x (N, ...), averaged over `repeats` draws of (t, eps), (N,) each.

        On x repeated, low-discrepancy times give each image one t in each 1/repeats slice of [0, 1].
        """
        check_positive_int(repeats, "repeats")
        draws = self.terms(x.repeat(repeats, *[1] * (x.ndim - 1)), generator)
        return {k: v.view(repeats, len(x)).mean(0) for k, v in draws.items()}

    def loss(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The -ELBO in nats per image, (B,): the sum of the three terms."""
        return sum(self.terms(x, generator).values())

    @torch.no_grad()
    def sample(self, n: int, n_steps: int = 200, generator=None) -> torch.Tensor:
        """n integer images (n, dim) in 0..levels-1: ancestral sampling to x0_tilde, then p(x_0 | x0_tilde)."""
        check_positive_int(n, "n")
        device = next(self.parameters()).device
        x0_tilde = ancestral_sample(self.denoise, (n, self.dim), self.schedule, n_steps, generator=generator,
                                    device=device, dtype=self.schedule.log_snr_max.dtype)
        log_p = decoder_log_probs(x0_tilde, self.schedule.log_snr_max, self.levels)  # (n, dim, levels)
        return gumbel_max(log_p, generator)  # an exact draw from each pixel's categorical


# -- the reference recipe of notebook 08 and benchmarks/ch08_vdm.py ------------------------------
def digits_vdm(x_train: torch.Tensor, hidden: int = 256, n_hidden: int = 3) -> VDM:
    """Notebook 08's VDM for integer images x_train (N, D): its denoiser starts as independent pixels of x_train."""
    return VDM(dim=x_train[0].numel(), hidden=hidden, n_hidden=n_hidden,
               log_probs=pixel_log_marginals(x_train.flatten(1)))


def fit_vdm(model: VDM, x_train: torch.Tensor, *, n_steps: int = 1000, batch_size: int = 128, lr: float = 3e-3,
            schedule_lr: float = 3e-2, generator=None, progress: bool = True) -> list[float]:
    """Adam on the -ELBO (`VDM.loss`), the schedule's few parameters at schedule_lr, both cosine-decayed to 0.

    Notebook 08's recipe (1000 steps was the best on the validation split); returns the loss of every step.
    """
    groups = [{"params": model.net.parameters()}, {"params": model.schedule.parameters(), "lr": schedule_lr}]
    optimizer = torch.optim.Adam(groups, lr=lr)
    return train(model, lambda m, x: m.loss(x, generator), x_train, n_steps, batch_size, optimizer=optimizer,
                 cosine=True, generator=generator, progress=progress)
