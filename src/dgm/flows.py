"""Chapter 2: normalizing flows built from invertible layers with cheap Jacobian determinants.

Every layer maps data to latent, `forward(x) -> (z, log_det)` with log_det = log|det dz/dx| of
shape (B,), and back, `inverse(z) -> x`: couplings (NICE, RealNVP), permutations, a diagonal
scaling, a logit for data in the unit box, planar layers and MAF. A `NormalizingFlow` stacks layers;
log p(x) = log N(z; 0, I) + the sum of the layers' log_dets (Eq. (eq-flows-composition)).
Conditioners start at zero, so every coupling (and MAF) layer starts as the identity map.
"""
import math

import torch
from torch import nn
from torch.nn.functional import softplus

# MAF (Sec. "Autoregressive flows" of this chapter) is an autoregressive model used as a flow layer:
# its shifts and log-scales come from chapter 3's masked network, MADE, which chapter 2 borrows
# rather than defining a second copy (the page points forward to chapter 3 for how the masks work).
from .autoregressive import MADE
from .digits import dequantize, nll_nats_per_image
from .mle import nll
from .nets import MLP
from .train import train
from .utils import check_batch, check_positive_int, standard_normal_log_prob


def _check_mask(mask) -> torch.Tensor:
    """A (D,) float mask of 0s and 1s with both values present (1 = passed through, 0 = transformed)."""
    mask = torch.as_tensor(mask, dtype=torch.get_default_dtype())
    if mask.ndim != 1 or mask.numel() < 2:
        raise ValueError(f"mask must have shape (D,) with D >= 2, got shape {tuple(mask.shape)}")
    if not bool(torch.all((mask == 0) | (mask == 1))) or mask.min() == mask.max():
        raise ValueError(f"mask must hold only 0s and 1s, both at least once, got {mask.tolist()}")
    return mask


class AdditiveCoupling(nn.Module):
    """NICE coupling z = x + (1 - m) t(m x), Eq. (eq-flows-nice): shifts the 0-entries; log_det = 0."""

    def __init__(self, mask, hidden: int = 128, n_hidden: int = 2):
        super().__init__()
        self.register_buffer("mask", _check_mask(mask))
        self.dim = self.mask.numel()
        self.t = MLP(self.dim, self.dim, hidden, n_hidden, act=nn.ReLU, zero_last=True)  # t = 0: the identity

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        x_a = x * self.mask  # (B, D): the half that is kept and conditions the other half
        z = x + (1 - self.mask) * self.t(x_a)  # (B, D): shift only the transformed half
        return z, x.new_zeros(len(x))  # volume preserving: the Jacobian is unit triangular

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. (eq-flows-nice-inverse): x_b = z_b - t(z_a), with z_a = x_a unchanged."""
        check_batch(z, self.dim, "z")
        return z - (1 - self.mask) * self.t(z * self.mask)


class AffineCoupling(nn.Module):
    """RealNVP coupling z = m x + (1 - m)(x exp(s) + t), s and t functions of m x, Eq. (eq-flows-realnvp).

    The log-scale is bounded, s = scale * tanh(raw), with a learned per-dimension `scale` (as in the
    RealNVP reference code): an unbounded s can blow up exp(s) early in training.
    """

    def __init__(self, mask, hidden: int = 128, n_hidden: int = 2):
        super().__init__()
        self.register_buffer("mask", _check_mask(mask))
        self.dim = self.mask.numel()
        self.net = MLP(self.dim, 2 * self.dim, hidden, n_hidden, act=nn.ReLU, zero_last=True)  # s = t = 0
        self.scale = nn.Parameter(torch.ones(self.dim))

    def _log_scale_and_shift(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw, t = self.net(x_a).chunk(2, dim=1)  # (B, D) each
        s = self.scale * torch.tanh(raw) * (1 - self.mask)  # (B, D): zero on the kept half
        return s, t * (1 - self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        s, t = self._log_scale_and_shift(x * self.mask)  # (B, D), (B, D)
        z = x * torch.exp(s) + t  # kept half: s = t = 0, so z_a = x_a
        return z, s.sum(1)  # Eq. (eq-flows-realnvp-logdet): log|det| = sum of log-scales

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        check_batch(z, self.dim, "z")
        s, t = self._log_scale_and_shift(z * self.mask)  # z_a = x_a, so s and t are recomputed exactly
        return (z - t) * torch.exp(-s)


class Permutation(nn.Module):
    """z = x[:, perm]: reorders the coordinates; log_det = 0 (|det| of a permutation matrix is 1)."""

    def __init__(self, perm):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.ndim != 1 or not torch.equal(perm.sort().values, torch.arange(len(perm))):
            raise ValueError(f"perm must be a permutation of 0..D-1, got {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))
        self.dim = len(perm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        check_batch(z, self.dim, "z")
        return z[:, self.inv_perm]


def reverse_permutation(dim: int) -> Permutation:
    """The permutation that reverses the order of the D coordinates."""
    return Permutation(torch.arange(dim - 1, -1, -1))


class Scaling(nn.Module):
    """z = x exp(s) with a learned s (D,): NICE's final diagonal scaling, log_det = sum(s)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.s = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        return x * torch.exp(self.s), self.s.sum().expand(len(x))

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        check_batch(z, self.dim, "z")
        return z * torch.exp(-self.s)


class Logit(nn.Module):
    """z = logit(s), s = a + (1 - 2a) y: maps dequantised pixels y in [0, 1)^D onto R^D, where the base lives."""

    def __init__(self, dim: int, alpha: float = 0.01):
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.dim, self.alpha = dim, alpha

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(y, self.dim, "y")
        s = self.alpha + (1 - 2 * self.alpha) * y  # (B, D) in [a, 1 - a)
        log_det = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).sum(1)  # d logit(s)/ds = 1/(s(1-s))
        return torch.log(s) - torch.log1p(-s), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        check_batch(z, self.dim, "z")
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)


def alternating_masks(dim: int, n_layers: int) -> list[torch.Tensor]:
    """n_layers coupling masks (D,): the parity pattern 1, 0, 1, ... and its complement, alternating."""
    if not isinstance(dim, int) or dim < 2:
        raise ValueError(f"need dim >= 2 (a coupling needs a half to keep and a half to transform), got dim={dim!r}")
    check_positive_int(n_layers, "n_layers")
    parity = (torch.arange(dim) % 2 == 0).to(torch.get_default_dtype())  # (D,)
    return [parity if i % 2 == 0 else 1 - parity for i in range(n_layers)]


class Planar(nn.Module):
    """Planar layer z = x + u_hat tanh(w^T x + b), Eq. (eq-flows-planar), in the data->latent direction.

    u_hat = u + (m(w^T u) - w^T u) w / ||w||^2 with m(a) = -1 + softplus(a) keeps w^T u_hat > -1,
    the condition under which the map is invertible, Eq. (eq-flows-planar-condition).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        w = torch.randn(dim) / math.sqrt(dim)
        self.w = nn.Parameter(w)
        self.u = nn.Parameter(math.log(math.e - 1) * w / (w @ w))  # softplus(w^T u) = 1: u_hat = 0, identity
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        """The reparameterised u (D,) with w^T u_hat = -1 + softplus(w^T u) > -1."""
        wu = self.w @ self.u
        return self.u + (-1 + softplus(wu) - wu) * self.w / (self.w @ self.w).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        u_hat = self.u_hat()  # (D,)
        h = torch.tanh(x @ self.w + self.b)  # (B,)
        z = x + h[:, None] * u_hat  # (B, D)
        # Eq. (eq-flows-planar-logdet): det(I + u_hat psi^T) = 1 + psi^T u_hat, psi = h'(.) w
        return z, torch.log(torch.abs(1 + (1 - h**2) * (self.w @ u_hat)))

    def inverse(self, z: torch.Tensor, n_iter: int = 60) -> torch.Tensor:
        """Solve alpha + c tanh(alpha + b) = w^T z for alpha = w^T x by bisection (c = w^T u_hat >= -1:
        the left side increases in alpha), then x = z - u_hat tanh(alpha + b)."""
        check_batch(z, self.dim, "z")
        u_hat = self.u_hat()
        c, target = self.w @ u_hat, z @ self.w  # scalar, (B,)
        lo, hi = target - c.abs() - 1, target + c.abs() + 1  # (B,): |c tanh| <= |c| brackets the root
        for _ in range(n_iter):
            mid = (lo + hi) / 2
            below = mid + c * torch.tanh(mid + self.b) < target  # (B,)
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        alpha = (lo + hi) / 2
        return z - torch.tanh(alpha + self.b)[:, None] * u_hat


class MAF(nn.Module):
    """Masked autoregressive flow z_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i)), Eq. (eq-flows-maf).

    One MADE pass gives every mu_i, alpha_i (fast density); the inverse x_i = z_i exp(alpha_i) + mu_i
    needs x_<i first: D passes in the order. alpha is bounded as in AffineCoupling; starts at the identity.
    """

    def __init__(self, dim: int, hidden: int = 128, order=None):
        super().__init__()
        self.dim = dim
        self.made = MADE(dim, hidden=(hidden, hidden), out_per_dim=2, order=order)
        nn.init.zeros_(self.made.net[-1].weight)
        nn.init.zeros_(self.made.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def _shift_and_log_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = self.made(x).unbind(-1)  # (B, D) each; entry i depends on x_<i only
        return mu, self.scale * torch.tanh(raw)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(x, self.dim, "x")
        mu, alpha = self._shift_and_log_scale(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(1)  # triangular Jacobian, diagonal exp(-alpha)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        check_batch(z, self.dim, "z")
        x = torch.zeros_like(z)
        columns = torch.arange(self.dim, device=z.device)
        for i in torch.argsort(self.made.order).tolist():  # dimension i comes next in the order
            mu, alpha = self._shift_and_log_scale(x)  # entry i is final: x_<i is already in place
            x = torch.where(columns == i, z * torch.exp(alpha) + mu, x)  # (B, D): fill column i
        return x


class NormalizingFlow(nn.Module):
    """A stack of layers f_L o ... o f_1 with a standard normal base, Eq. (eq-flows-composition)."""

    def __init__(self, layers, dim: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dim = dim
        wrong = [f"{type(layer).__name__} (D={layer.dim})" for layer in layers if getattr(layer, "dim", dim) != dim]
        if wrong:
            raise ValueError(f"every layer must act on D={dim} coordinates, got {', '.join(wrong)}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to latent: z = f_L(...f_1(x)) and the summed log|det dz/dx|, shapes (B, D), (B,)."""
        check_batch(x, self.dim, "x")
        log_det = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Latent to data: x = f_1^{-1}(...f_L^{-1}(z)), shape (B, D)."""
        check_batch(z, self.dim, "z")
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(f(x); 0, I) + log|det df/dx|, shape (B,)."""
        z, log_det = self(x)
        log_base = standard_normal_log_prob(z)  # (B,)
        return log_base + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples (n, D): z ~ N(0, I) (drawn on the CPU, then moved), x = f^{-1}(z)."""
        like = next(self.parameters(), torch.zeros(()))  # the flow's device and dtype
        return self.inverse(torch.randn(n, self.dim, generator=generator, dtype=like.dtype).to(like.device))

    @torch.no_grad()
    def trajectory(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The states [x, f_1(x), f_2(f_1(x)), ..., z]: L + 1 tensors (B, D), for animations."""
        check_batch(x, self.dim, "x")
        states = [x]
        for layer in self.layers:
            states.append(layer(states[-1])[0])
        return states


def realnvp(dim: int, n_layers: int = 16, hidden: int = 64, n_hidden: int = 2) -> NormalizingFlow:
    """RealNVP: n_layers affine couplings with alternating masks."""
    return NormalizingFlow([AffineCoupling(m, hidden, n_hidden) for m in alternating_masks(dim, n_layers)], dim)


def nice(dim: int, n_layers: int = 8, hidden: int = 64, n_hidden: int = 2, scaling: bool = True,
         init_std: float = 0.1) -> NormalizingFlow:
    """NICE: n_layers additive couplings with alternating masks, then (scaling=True) a diagonal scaling.

    init_std > 0 draws the conditioners' last weights from N(0, init_std^2) instead of zero. At the
    identity the shift of every layer is at a stationary point when E[x_b | x_a] = 0, as for data
    symmetric under x_b -> -x_b (eight Gaussians): a zero-initialised NICE never leaves it.
    """
    layers = [AdditiveCoupling(m, hidden, n_hidden) for m in alternating_masks(dim, n_layers)]
    for layer in layers:
        nn.init.normal_(layer.t[-1].weight, std=init_std)
    return NormalizingFlow(layers + ([Scaling(dim)] if scaling else []), dim)


def planar_flow(dim: int, n_layers: int = 16) -> NormalizingFlow:
    """A stack of n_layers planar layers."""
    return NormalizingFlow([Planar(dim) for _ in range(n_layers)], dim)


# -- the recipes of notebook 02b and benchmark 2 -----------------------------------------------------
def fit_flow(flow: nn.Module, sample, *, n_steps: int = 800, batch_size: int = 256, lr: float = 5e-3,
             generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Maximum likelihood on fresh toy samples `sample(n)` (n, D): Adam, cosine-decayed lr; per-step losses.

    The toy recipe of notebook 02b and benchmark 2 for `nice(2)`, `realnvp(2)` and `planar_flow(2)`
    (the planar stack is given lr=1e-2: its few parameters move slowly at 5e-3).
    """
    return train(flow, nll, sample, n_steps, batch_size, lr=lr, cosine=True, generator=generator,
                 progress=progress)


def digits_realnvp(n_layers: int = 8, hidden: int = 128, n_hidden: int = 1, alpha: float = 0.01) -> NormalizingFlow:
    """The digits flow of notebook 02b: a logit layer, then n_layers affine couplings on (B, 64) pixels in [0, 1)."""
    couplings = [AffineCoupling(m, hidden=hidden, n_hidden=n_hidden) for m in alternating_masks(64, n_layers)]
    return NormalizingFlow([Logit(64, alpha=alpha), *couplings], dim=64)


def fit_digits_flow(flow: nn.Module, x_train: torch.Tensor, *, n_steps: int = 500, batch_size: int = 128,
                    lr: float = 1e-3, generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Adam on -log p_y of dequantised minibatches (fresh noise every step) of integer images x_train (N, 64).

    The digits recipe of notebook 02b and benchmark 2; returns the per-step losses (nats of y in [0, 1)^64).
    """
    def batch(n: int) -> torch.Tensor:  # n dequantised training images (n, 64) in [0, 1)
        return dequantize(x_train[torch.randint(len(x_train), (n,), generator=generator)], generator)

    return train(flow, nll, batch, n_steps, batch_size, lr=lr, progress=progress)


@torch.no_grad()
def dequantised_nll(flow: nn.Module, x: torch.Tensor, n_draws: int = 4,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. (eq-flows-dequantisation): the bound in nats per integer image x (N, 64), mean over n_draws of u: (N,)."""
    check_positive_int(n_draws, "n_draws")
    device = next(flow.parameters()).device
    draws = [nll_nats_per_image(flow.log_prob(dequantize(x, generator).to(device))) for _ in range(n_draws)]
    return torch.stack(draws).mean(0).cpu()
