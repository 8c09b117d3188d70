"""Energy-based models (chapter 5, notebook 05b): p(x) = exp(-E(x)) / Z, trained by positive minus negative phase.

A neural energy E_theta(x) has no closed-form partition function; its negatives come from short-run
Langevin chains restarted from a replay buffer, and on 2-D toy data the book normalises it on a grid
instead. Restricted Boltzmann machines, whose log Z can be summed exactly, are in `dgm.rbm`.
"""
import math

import torch
from torch import nn

from .langevin import langevin
from .nets import MLP
from .train import train
from .utils import check_batch, check_positive_int


# -- learning: positive phase minus negative phase ------------------------------------------------
def contrastive_loss(energy, x: torch.Tensor, x_neg: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """E(x) - mean E(x_neg) (+ reg (E(x)^2 + mean E(x_neg)^2)), shape (B,) (Eq. (eq-ebm-loglik-grad)).

    Its gradient is minus the log-likelihood gradient when x_neg ~ p_theta: the positive phase pulls
    the energy of data down, the negative phase pushes the energy of model samples up. `energy` maps
    (B, D) -> (B,) (an RBM's free energy or a NeuralEnergy); x_neg is treated as a constant.
    """
    e_pos, e_neg = energy(x), energy(x_neg.detach())  # (B,), (B',)
    loss = e_pos - e_neg.mean()
    if reg:
        loss = loss + reg * (e_pos**2 + (e_neg**2).mean())  # keeps energies near 0 (Du & Mordatch 2019)
    return loss


# -- neural energies with short-run Langevin negatives -------------------------------------------
class NeuralEnergy(nn.Module):
    """E_theta(x): an MLP (B, D) -> (B,); p_theta(x) = exp(-E_theta(x)) / Z (Eq. (eq-ebm-boltzmann)).

    Leaky-ReLU units by default: on 2-D mixtures, smooth units (SiLU, GELU) fit sharp separated
    modes far more slowly (they first learn a smooth ring around eight Gaussians).
    """

    def __init__(self, dim: int, hidden: int = 128, n_hidden: int = 2, act=nn.LeakyReLU):
        super().__init__()
        self.dim = dim
        self.net = MLP(dim, 1, hidden=hidden, n_hidden=n_hidden, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.dim, "x")
        return self.net(x).squeeze(1)  # (B,)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """grad_x log p_theta(x) = -grad_x E_theta(x), shape (B, D): Z does not depend on x."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return -torch.autograd.grad(self(x).sum(), x)[0]


class ReplayBuffer:
    """Short-run Langevin negatives restarted from a buffer of past negatives (Eq. (eq-ebm-langevin-negatives)).

    Each call starts n chains from buffer entries (a fraction `restart` from fresh uniform noise on
    [-lim, lim]^D instead), runs `n_steps` of Langevin on the model's score, and writes the end
    points back, so chains grow long across training steps while each step stays short.
    """

    def __init__(self, dim: int, size: int = 10_000, lim: float = 3.5, restart: float = 0.05,
                 generator: torch.Generator | None = None):
        check_positive_int(dim, "dim")
        check_positive_int(size, "size")
        if not 0 <= restart <= 1:
            raise ValueError(f"restart must be a fraction in [0, 1], got {restart}")
        self.lim, self.restart, self.generator = lim, restart, generator
        self.buffer = self._noise(size, dim)  # (size, D)

    def _noise(self, n, dim):
        return self.lim * (2 * torch.rand(n, dim, generator=self.generator) - 1)

    def negatives(self, energy: NeuralEnergy, n: int, step_size: float = 0.01, n_steps: int = 20) -> torch.Tensor:
        """n negatives (n, D) on the energy's device; updates the buffer."""
        # 1. starting points: buffer entries, some replaced by fresh noise so new modes can be found
        idx = torch.randint(len(self.buffer), (n,), generator=self.generator)
        x = self.buffer[idx]
        fresh = torch.rand(n, generator=self.generator) < self.restart
        x[fresh] = self._noise(int(fresh.sum()), x.shape[1])
        # 2. short-run Langevin on log p_theta, x <- x + step * score + sqrt(2 step) eps
        device = next(energy.parameters()).device
        x = langevin(energy.score, x.to(device), step_size=step_size, n_steps=n_steps, generator=self.generator)
        # 3. the end points go back into the buffer
        self.buffer[idx] = x.detach().cpu()
        return x.detach()


@torch.no_grad()
def grid_log_z(energy, lim: float = 3.5, n: int = 200, device=None) -> float:
    """log of the Riemann sum of exp(-E) over an n x n grid on [-lim, lim]^2: Z of the model restricted to the box."""
    check_positive_int(n, "n")
    xs = torch.linspace(-lim, lim, n, device=device)
    points = torch.cartesian_prod(xs, xs)  # (n^2, 2)
    cell = (xs[1] - xs[0]).item() ** 2
    return (torch.logsumexp(-energy(points), dim=0) + math.log(cell)).item()


def box_log_prob(energy, lim: float = 3.5, n: int = 200, device=None):
    """The energy normalised on the box [-lim, lim]^2 (Eq. (eq-ebm-boltzmann) with Z from `grid_log_z`).

    Returns log q, a function (B, 2) -> (B,): -E(x) - log Z_box inside the box and -inf outside (q = 0 there),
    so that q is a density and KL(p || q) is finite exactly when p lives in the box. The normaliser is
    computed once, for the energy's current parameters.
    """
    log_z = grid_log_z(energy, lim=lim, n=n, device=device)

    def log_q(x: torch.Tensor) -> torch.Tensor:
        inside = (x.abs() <= lim).all(1)  # (B,)
        return torch.where(inside, -energy(x) - log_z, torch.full_like(inside, -math.inf, dtype=x.dtype))

    return log_q


# -- the recipe of notebook 05b (and the chapter's benchmark) -----------------------------------
def toy_ebm(dim: int = 2, hidden: int = 64, n_hidden: int = 2, act=nn.LeakyReLU, buffer_size: int = 2000,
            lim: float = 3.5, restart: float = 0.05,
            generator: torch.Generator | None = None) -> tuple[NeuralEnergy, ReplayBuffer]:
    """The neural EBM of notebook 05b: an MLP energy (leaky ReLU) and its replay buffer of negatives on the box."""
    energy = NeuralEnergy(dim, hidden=hidden, n_hidden=n_hidden, act=act)
    return energy, ReplayBuffer(dim, size=buffer_size, lim=lim, restart=restart, generator=generator)


def fit_ebm(energy: NeuralEnergy, buffer: ReplayBuffer, data, *, n_steps: int = 800, batch_size: int = 256,
            lr: float = 2e-3, betas: tuple[float, float] = (0.0, 0.999), reg: float = 0.01, step_size: float = 0.01,
            langevin_steps: int = 20, progress: bool = True) -> list[float]:
    """Positive minus negative phase with short-run Langevin negatives from the replay buffer (Eq.
    (eq-ebm-langevin-negatives)), energy penalty `reg`, Adam (beta1 = 0) and a cosine-decayed learning rate.

    The recipe of notebook 05b and its benchmark; `data(n)` draws n training points. Returns the losses.
    """
    def loss(model, x):
        x_neg = buffer.negatives(model, len(x), step_size=step_size, n_steps=langevin_steps)  # (B, D)
        return contrastive_loss(model, x, x_neg, reg=reg)

    return train(energy, loss, data, n_steps, batch_size, lr=lr, betas=betas, cosine=True, progress=progress)
