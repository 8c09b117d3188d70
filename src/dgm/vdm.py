"""Chapter 8, variational diffusion models (Kingma et al. 2021): the continuous-time ELBO in three terms.

For data x (values on a grid of `levels` in [-1, 1], or continuous data with levels=None) and
z_t = alpha_t x + sigma_t eps with log-SNR lambda_t = log(alpha_t^2 / sigma_t^2) falling in t,
-log p(x) <= prior + diffusion + reconstruction, per example, in nats:
  prior           KL(q(z_1 | x) || N(0, I))                                 Eq. (eq-vdm-prior)
  diffusion       -1/2 E_t[lambda'(t) e^lambda_t ||x - x_hat(z_t; lambda_t)||^2]  Eq. (eq-vdm-continuous-loss)
  reconstruction  E_q[-log p(x | z_0)], a decoder over the grid values        Eq. (eq-vdm-reconstruction)
The conversions (x_0, eps, v) and the fixed schedules live in `dgm.diffusion`. A denoiser is a
function denoise_fn(z_t (B, D), log_snr (B,)) -> x_hat (B, D): it sees the log-SNR, not t, so that
only the schedule's endpoints matter (Eq. (thm-vdm-invariance)).
"""
import math

import torch
from torch import nn

from .diffusion import alpha_sigma, check_time, x0_from_eps
from .nets import TimeMLP
from .utils import append_dims, check_batch

GAMMA_MIN, GAMMA_MAX = -13.3, 5.0  # VDM's initial endpoints of gamma = -log SNR (their CIFAR-10 values)


def _sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the batch axis: (B, ...) -> (B,)."""
    return x.flatten(1).sum(1)


def _per_example(v, x: torch.Tensor) -> torch.Tensor:
    """A float, 0-d or (B,) value as a tensor broadcasting against the batch x: (B, 1, ...)."""
    return append_dims(torch.as_tensor(v, dtype=x.dtype, device=x.device).expand(x.shape[0]), x.ndim)


def grid_values(levels: int = 17, device=None, dtype=None) -> torch.Tensor:
    """The `levels` data values -1, ..., 1 equally spaced (17 for the digits), shape (levels,)."""
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    return torch.linspace(-1.0, 1.0, levels, device=device, dtype=dtype)


def to_grid(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """Integer pixels 0..levels-1 -> floats 2 x / (levels - 1) - 1 in [-1, 1]."""
    if x.is_floating_point() or x.numel() == 0 or x.min() < 0 or x.max() >= levels:
        raise ValueError(f"x must hold integers in 0..{levels - 1}, got dtype {x.dtype}"
                         + (f" with range [{x.min()}, {x.max()}]" if x.numel() else " (empty)"))
    return 2 * x.to(torch.get_default_dtype()) / (levels - 1) - 1


def low_discrepancy_times(n: int, generator=None, device=None) -> torch.Tensor:
    """t_i = (u + i / n) mod 1, one uniform u for the batch: each t uniform, the batch evenly spread (VDM)."""
    u = torch.rand((), generator=generator)
    return ((u + torch.arange(n) / n) % 1.0).to(device)


class LearnedSchedule(nn.Module):
    """gamma(t) = -lambda(t), increasing from gamma_min to gamma_max, both learnable. Eq. (eq-vdm-snr).

    gamma(t) = gamma_min + (gamma_max - gamma_min) (g(t) - g(0)) / (g(1) - g(0)) with the monotone
    network g(t) = w1 t + (1/K) sum_k w3_k (2 sigmoid(w2_k (2t - 1) + b_k) - 1), every weight made
    non-negative by abs (Kingma et al. 2021, App. H). The shape is split from the endpoints so the
    training loop can treat the two differently (see `VDM.terms`).
    """

    def __init__(self, gamma_min: float = GAMMA_MIN, gamma_max: float = GAMMA_MAX, n_features: int = 64):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"need gamma_max > gamma_min, got gamma_min={gamma_min}, gamma_max={gamma_max}")
        self.gamma_min = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_max = nn.Parameter(torch.tensor(float(gamma_max)))
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
        """gamma(t) = -log SNR(t), shape (B,)."""
        s, _ = self.shape(t)
        return self.gamma_min + (self.gamma_max - self.gamma_min) * s

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """lambda(t) = -gamma(t), shape (B,): what `vdm_terms` and the samplers take."""
        return -self(t)


# -- the three terms --------------------------------------------------------------------------
def prior_term(x0: torch.Tensor, log_snr_1) -> torch.Tensor:
    """KL(N(alpha_1 x, sigma_1^2 I) || N(0, I)) = 1/2 sum(sigma_1^2 + alpha_1^2 x^2 - log sigma_1^2 - 1), (B,).

    Eq. (eq-vdm-prior)."""
    log_snr_1 = _per_example(log_snr_1, x0)
    alpha2, sigma2 = torch.sigmoid(log_snr_1), torch.sigmoid(-log_snr_1)
    return 0.5 * _sum(sigma2 + alpha2 * x0**2 - torch.log(sigma2) - 1)


def decoder_log_probs(z0: torch.Tensor, log_snr_0, levels: int = 17) -> torch.Tensor:
    """log p(x_i = v_k | z_0) for the grid values v_k, shape (B, ..., levels). Eq. (eq-vdm-reconstruction).

    p(x_i = v | z_0) is proportional to N(z_0,i; alpha_0 v, sigma_0^2): Bayes' rule with a uniform prior
    on the grid, logits -1/2 e^lambda_0 (z_0 / alpha_0 - v)^2.
    """
    log_snr_0 = _per_example(log_snr_0, z0)
    alpha_0, _ = alpha_sigma(log_snr_0)
    v = grid_values(levels, z0.device, z0.dtype)  # (levels,)
    logits = -0.5 * torch.exp(log_snr_0)[..., None] * (z0 / alpha_0)[..., None].sub(v) ** 2  # (B, ..., levels)
    return torch.log_softmax(logits, dim=-1)


def reconstruction_term(x0: torch.Tensor, z0: torch.Tensor, log_snr_0, levels: int | None = 17) -> torch.Tensor:
    """-log p(x | z_0), (B,), on the grid (levels=None: N(x; z_0/alpha_0, e^-lambda_0)). Eq. (eq-vdm-reconstruction)."""
    if levels is None:
        log_snr_0 = _per_example(log_snr_0, z0)
        var = torch.exp(-log_snr_0).expand_as(x0)
        return 0.5 * _sum((x0 - z0 / alpha_sigma(log_snr_0)[0]) ** 2 / var + torch.log(2 * math.pi * var))
    k = torch.round((x0 + 1) / 2 * (levels - 1)).long()
    if not torch.allclose(x0, grid_values(levels, x0.device, x0.dtype)[k.clamp(0, levels - 1)], atol=1e-5):
        raise ValueError(f"x0 must lie on the grid of {levels} values in [-1, 1] (use to_grid), "
                         f"got values in [{x0.min().item():.3g}, {x0.max().item():.3g}] off the grid")
    return -_sum(decoder_log_probs(z0, log_snr_0, levels).gather(-1, k[..., None])[..., 0])


def factorised_denoiser(zt, log_snr, log_probs) -> torch.Tensor:
    """Exact E[x | z_t] (B, D) for independent pixels with laws exp(log_probs) (D, levels): Bayes' rule per pixel.

    r_k proportional to q_i(v_k) N(z_t; alpha v_k, sigma^2), x_hat = sum_k r_k v_k. Eq. (eq-vdm-tweedie).
    """
    log_snr = _per_example(log_snr, zt)
    alpha, _ = alpha_sigma(log_snr)
    v = grid_values(log_probs.shape[-1], zt.device, zt.dtype)  # (levels,)
    logits = log_probs - 0.5 * torch.exp(log_snr)[..., None] * ((zt / alpha)[..., None] - v) ** 2  # (B, D, levels)
    return torch.softmax(logits, dim=-1) @ v


def diffusion_integrand(x0, x_hat, log_snr, dlog_snr_dt) -> torch.Tensor:
    """-1/2 lambda'(t) e^lambda ||x - x_hat||^2 at per-example t, (B,). Eq. (eq-vdm-continuous-loss)."""
    return -0.5 * dlog_snr_dt * torch.exp(log_snr) * _sum((x0 - x_hat) ** 2)


def _denoise(denoise_fn, zt, log_snr):
    x_hat = denoise_fn(zt, log_snr)
    if x_hat.shape != zt.shape:
        raise ValueError(f"denoise_fn must return the shape of z_t {tuple(zt.shape)}, got {tuple(x_hat.shape)}")
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
    t ~ U[0, 1] per example (low-discrepancy over the batch by default); t and eps may be given.
    """
    B = x0.shape[0]
    # 1. a time and a noise per example
    t = (low_discrepancy_times(B, generator, x0.device) if low_discrepancy else
         torch.rand(B, generator=generator).to(x0.device)) if t is None else t.to(x0)
    eps = torch.randn(x0.shape, generator=generator).to(x0) if eps is None else eps
    # 2. the schedule at t and at the endpoints
    log_snr, slope = log_snr_and_slope(log_snr_fn, t.to(x0.dtype))
    log_snr_ends = log_snr_fn(torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device))  # (lambda_0, lambda_1)
    # 3. diffuse, denoise, and weigh the squared error by -lambda' e^lambda / 2
    alpha, sigma = alpha_sigma(append_dims(log_snr, x0.ndim))
    x_hat = _denoise(denoise_fn, alpha * x0 + sigma * eps, log_snr)
    diffusion = diffusion_integrand(x0, x_hat, log_snr, slope)
    # 4. the two ends: prior matching at t = 1, reconstruction from z_0 at t = 0
    alpha_0, sigma_0 = alpha_sigma(log_snr_ends[0])
    recon = reconstruction_term(x0, alpha_0 * x0 + sigma_0 * eps, log_snr_ends[0], levels)
    return dict(prior=prior_term(x0, log_snr_ends[1]), diffusion=diffusion, reconstruction=recon)


def q_posterior(x0, zt, log_snr_s, log_snr_t):
    """q(z_s | z_t, x), s < t: mean (1-c) (alpha_s/alpha_t) z_t + c alpha_s x, var c sigma_s^2, c = 1 - SNR_t/SNR_s."""
    log_snr_s, log_snr_t = _per_example(log_snr_s, zt), _per_example(log_snr_t, zt)
    c = -torch.expm1(log_snr_t - log_snr_s)  # 1 - SNR_t / SNR_s, in (0, 1] when s < t
    (alpha_s, sigma_s), (alpha_t, _) = alpha_sigma(log_snr_s), alpha_sigma(log_snr_t)
    return (1 - c) * (alpha_s / alpha_t) * zt + c * alpha_s * x0, c * sigma_s**2


def discrete_diffusion_loss(x0, denoise_fn, log_snr_fn, T: int, generator=None, i=None, eps=None) -> torch.Tensor:
    """L_T = T E_i[(SNR(s) - SNR(t)) ||x - x_hat(z_t)||^2 / 2], s, t = (i-1)/T, i/T, (B,). Eq. (eq-vdm-discrete-loss)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    B = x0.shape[0]
    i = torch.randint(1, T + 1, (B,), generator=generator).to(x0.device) if i is None else i
    eps = torch.randn(x0.shape, generator=generator).to(x0) if eps is None else eps
    log_snr_s, log_snr_t = log_snr_fn((i - 1).to(x0.dtype) / T), log_snr_fn(i.to(x0.dtype) / T)
    alpha, sigma = alpha_sigma(append_dims(log_snr_t, x0.ndim))
    x_hat = _denoise(denoise_fn, alpha * x0 + sigma * eps, log_snr_t)
    snr_gap = -torch.exp(log_snr_s) * torch.expm1(log_snr_t - log_snr_s)  # SNR(s) - SNR(t) > 0
    return T * 0.5 * snr_gap * _sum((x0 - x_hat) ** 2)


@torch.no_grad()
def ancestral_sample(denoise_fn, log_snr_fn, shape, n_steps: int = 200, generator=None, device=None) -> torch.Tensor:
    """z_0 from z_1 ~ N(0, I) by p(z_s | z_t) = q(z_s | z_t, x = x_hat(z_t)) on a uniform t grid, shape `shape`."""
    ts = torch.linspace(1.0, 0.0, n_steps + 1, device=device)
    log_snrs = log_snr_fn(ts)  # (n_steps + 1,): one schedule evaluation for the whole grid
    z = torch.randn(shape, generator=generator).to(device)
    for lam_t, lam_s in zip(log_snrs[:-1], log_snrs[1:]):
        x_hat = _denoise(denoise_fn, z, lam_t.expand(shape[0]))
        mean, var = q_posterior(x_hat, z, lam_s, lam_t)
        z = mean + var.sqrt() * torch.randn(shape, generator=generator).to(device)
    return z


class VDM(nn.Module):
    """Continuous-time VDM for flattened images on a grid of `levels`: a learned schedule and an eps-model."""

    def __init__(self, dim: int = 64, levels: int = 17, hidden: int = 256, n_hidden: int = 3,
                 gamma_min: float = GAMMA_MIN, gamma_max: float = GAMMA_MAX, log_probs=None):
        super().__init__()
        self.dim, self.levels = dim, levels
        self.net = TimeMLP(dim, hidden=hidden, n_hidden=n_hidden)
        nn.init.zeros_(self.net.net[-1].weight)  # correction 0: the model starts as independent pixels
        nn.init.zeros_(self.net.net[-1].bias)
        self.schedule = LearnedSchedule(gamma_min, gamma_max)
        uniform = torch.full((dim, levels), -math.log(levels))
        self.register_buffer("log_probs", uniform if log_probs is None else torch.as_tensor(log_probs).clone())

    def eps_hat(self, zt: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        """eps of the independent-pixel Bayes denoiser plus the network's correction, (B, D).

        The network sees x_base = E_q[x | z_t] under independent pixels (a per-pixel, increasing function
        of z_t: nothing is lost, and the grid is already built in) and gamma rescaled to about [0, 1].
        """
        alpha, sigma = alpha_sigma(append_dims(log_snr, zt.ndim))
        x_base = factorised_denoiser(zt, log_snr, self.log_probs)
        return (zt - alpha * x_base) / sigma + self.net(x_base, (-log_snr - GAMMA_MIN) / (GAMMA_MAX - GAMMA_MIN))

    def denoise(self, zt: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        """x_hat = (z_t - sigma eps_hat) / alpha, (B, D). Eq. (eq-vdm-parameterisations)."""
        return x0_from_eps(zt, self.eps_hat(zt, log_snr), *alpha_sigma(log_snr))

    def terms(self, x: torch.Tensor, generator=None) -> dict:
        """-ELBO of integer images x (B, D) as dict(prior, diffusion, reconstruction), each (B,) in nats.

        Same terms as `vdm_terms`, with the diffusion term in its eps form 1/2 gamma'(t) ||eps - eps_hat||^2.
        When training, the schedule's shape receives the gradient of E[L_diffusion^2] instead of E[L]:
        the ELBO does not depend on the shape (Eq. (thm-vdm-invariance)), its variance does (VDM, App. I.2).
        """
        check_batch(x.to(torch.get_default_dtype()), self.dim, "x")
        dtype = self.schedule.gamma_min.dtype
        x0 = to_grid(x, self.levels).to(dtype)
        # 1. times and noise; the schedule's shape s(t) and slope s'(t)
        t = low_discrepancy_times(x.shape[0], generator, x.device).to(dtype)
        eps = torch.randn(x0.shape, generator=generator).to(x0)
        s, ds = self.schedule.shape(t)
        g_min, g_max = self.schedule.gamma_min, self.schedule.gamma_max
        gamma, dgamma = g_min + (g_max - g_min) * s, (g_max - g_min) * ds  # (B,), (B,)
        # 2. the diffusion term in eps form
        alpha, sigma = alpha_sigma(append_dims(-gamma, 2))
        eps_hat = self.eps_hat(alpha * x0 + sigma * eps, -gamma)
        diffusion = 0.5 * dgamma * ((eps - eps_hat) ** 2).sum(1)
        # 3. variance reduction: scale the gradient reaching s and s' by 2 L (d L^2 = 2 L dL), per example
        if s.requires_grad:
            scale = 2 * diffusion.detach()
            s.register_hook(lambda grad: grad * scale)
            ds.register_hook(lambda grad: grad * scale)
        # 4. prior and reconstruction at the learned endpoints
        alpha_0, sigma_0 = alpha_sigma(-g_min)
        recon = reconstruction_term(x0, alpha_0 * x0 + sigma_0 * eps, -g_min, self.levels)
        return dict(prior=prior_term(x0, -g_max), diffusion=diffusion, reconstruction=recon)

    @torch.no_grad()
    def nll_bound(self, x: torch.Tensor, repeats: int = 16, generator=None) -> dict:
        """The three terms of each image x (N, D), averaged over `repeats` draws of (t, eps), (N,) each.

        On x repeated, low-discrepancy times give each image one t in each 1/repeats slice of [0, 1].
        """
        draws = self.terms(x.repeat(repeats, 1), generator)
        return {k: v.view(repeats, len(x)).mean(0) for k, v in draws.items()}

    def loss(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The -ELBO in nats per image, (B,): the sum of the three terms."""
        return sum(self.terms(x, generator).values())

    @torch.no_grad()
    def sample(self, n: int, n_steps: int = 200, generator=None) -> torch.Tensor:
        """n integer images (n, D) in 0..levels-1: ancestral sampling to z_0, then a draw from p(x | z_0)."""
        device = next(self.parameters()).device
        z0 = ancestral_sample(self.denoise, self.schedule.log_snr, (n, self.dim), n_steps, generator, device)
        log_p = decoder_log_probs(z0, -self.schedule.gamma_min, self.levels)  # (n, D, levels)
        gumbel = -torch.log(-torch.log(torch.rand(log_p.shape, generator=generator).clamp_min(1e-20))).to(device)
        return (log_p + gumbel).argmax(-1)  # Gumbel-max: an exact draw from each pixel's categorical
