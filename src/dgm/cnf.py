"""Chapter 2, continuous normalizing flows: the instantaneous change of variables, Hutchinson's trace
estimator (as in FFJORD) and a fixed-step Runge-Kutta solver.

Convention (the flow direction of `dgm.flows`): data x = z(0), latent z(1), dz/dt = f(z, t). Then
    log p_x(x) = log N(z(1); 0, I) + int_0^1 tr(df/dz(t)) dt,    Eq. (eq-flows-instantaneous)
and the integral is carried along with the state as one more coordinate (the augmented ODE).
"""

import torch
from torch import nn

from .nets import MLP
from .train import train
from .utils import check_batch, check_positive_int, randn_like, standard_normal_log_prob


# -- the trace of the Jacobian ------------------------------------------------------------------
def _output_and_input(f, z):
    """f(z) with a graph back to z: `f` is a callable of z, or the tensor f(z) already computed from z."""
    if not callable(f):
        return f, z
    z = z if z.requires_grad else z.detach().requires_grad_(True)
    return f(z), z


def divergence_exact(f, z: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """tr(df/dz) per example by D vector-Jacobian products, shape (B,). Eq. (eq-flows-instantaneous).

    `f` is a callable (B, D) -> (B, D), or the tensor f(z) computed from z with autograd on.
    create_graph=True keeps the result differentiable (needed to train through it).
    """
    with torch.enable_grad():
        fz, z = _output_and_input(f, z)  # (B, D)
        check_batch(z, fz.shape[1], "z")
        div = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for i in range(z.shape[1]):  # row i of the Jacobian, keep its diagonal entry d f_i / d z_i
            row = torch.autograd.grad(fz[:, i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
            div = div + row[:, i]
    return div


def divergence_hutchinson(f, z: torch.Tensor, eps: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """eps^T (df/dz) eps per example by one vector-Jacobian product, shape (B,). Eq. (eq-flows-hutchinson).

    Unbiased for tr(df/dz) when E[eps eps^T] = I (Gaussian or Rademacher probes).
    """
    if eps.shape != z.shape:
        raise ValueError(f"eps must have the shape of z, {tuple(z.shape)}, got {tuple(eps.shape)}")
    with torch.enable_grad():
        fz, z = _output_and_input(f, z)  # (B, D)
        eps_J = torch.autograd.grad(fz, z, grad_outputs=eps, create_graph=create_graph)[0]  # (B, D): eps^T df/dz
    return (eps_J * eps).sum(1)


def rademacher_like(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A probe of z's shape with independent entries +-1 (E[eps eps^T] = I); drawn on the CPU, then moved."""
    eps = torch.randint(0, 2, z.shape, generator=generator).to(z.dtype) * 2 - 1
    return eps.to(z.device)


def gaussian_like(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A probe of z's shape with independent N(0, 1) entries; drawn on the CPU, then moved."""
    return randn_like(z, generator)


# -- the solver ---------------------------------------------------------------------------------
def integrate(f, z0: torch.Tensor, ts, return_path: bool = False):
    """Classical fourth-order Runge-Kutta for dz/dt = f(z, t) over the grid ts (increasing or decreasing).

    Returns z at ts[-1], shape of z0; with return_path=True also the list of states at every ts.
    """
    ts = torch.as_tensor(ts, dtype=z0.dtype)
    if ts.ndim != 1 or len(ts) < 2:
        raise ValueError(f"ts must be a 1-D grid of at least 2 times, got shape {tuple(ts.shape)}")
    z, path = z0, [z0]
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        h = t_next - t_cur
        # 1. four slopes: at the start, twice at the midpoint, at the end
        k1 = f(z, t_cur)
        k2 = f(z + 0.5 * h * k1, t_cur + 0.5 * h)
        k3 = f(z + 0.5 * h * k2, t_cur + 0.5 * h)
        k4 = f(z + h * k3, t_next)
        # 2. their weighted mean moves the state by one step
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if return_path:
            path.append(z)
    return (z, path) if return_path else z


# -- the model ----------------------------------------------------------------------------------
class VectorField(nn.Module):
    """f(z, t): an MLP with smooth (tanh) activations on the concatenation [z, t]; (B, D), scalar t -> (B, D)."""

    def __init__(self, dim: int, hidden: int = 64, n_hidden: int = 2):
        super().__init__()
        self.net = MLP(dim + 1, dim, hidden, n_hidden, act=nn.Tanh)  # smooth: the trace needs df/dz

    def forward(self, z: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t).to(z).reshape(1, 1).expand(z.shape[0], 1)  # (B, 1)
        return self.net(torch.cat([z, t], 1))


class CNF(nn.Module):
    """Continuous normalizing flow: data x = z(0) -> latent z(1) along dz/dt = f(z, t). Eq. (eq-flows-instantaneous)."""

    def __init__(self, dim: int, hidden: int = 64, n_hidden: int = 2):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim = dim
        self.field = VectorField(dim, hidden, n_hidden)

    def _check(self, x, n_steps):
        check_positive_int(n_steps, "n_steps")
        check_batch(x, self.dim, "x")

    def forward(self, x: torch.Tensor, n_steps: int = 16, exact: bool = True, probe=rademacher_like,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(z(1), log_det) with log_det = int_0^1 tr(df/dz) dt = log|det dz(1)/dx|, shapes (B, D), (B,).

        exact=False estimates the trace with Hutchinson's eps^T (df/dz) eps, one probe per integration
        drawn by `probe(x, generator)` (FFJORD), so the estimate of log_det is unbiased.
        """
        self._check(x, n_steps)
        create_graph = torch.is_grad_enabled()  # train through the trace only when gradients are wanted
        eps = None if exact else probe(x, generator)  # (B, D), fixed along the path

        def augmented(state, t):  # state = [z, int tr] (B, D + 1) -> [f, tr(df/dz)]
            with torch.enable_grad():
                z = state[:, :-1]
                z = z if z.requires_grad else z.detach().requires_grad_(True)
                fz = self.field(z, t)  # (B, D)
                if exact:
                    div = divergence_exact(fz, z, create_graph=create_graph)
                else:
                    div = divergence_hutchinson(fz, z, eps, create_graph=create_graph)
            if not create_graph:
                fz = fz.detach()
            return torch.cat([fz, div[:, None]], 1)

        state0 = torch.cat([x, torch.zeros_like(x[:, :1])], 1)  # (B, D + 1)
        state1 = integrate(augmented, state0, torch.linspace(0, 1, n_steps + 1))
        return state1[:, :-1], state1[:, -1]

    def log_prob(self, x: torch.Tensor, n_steps: int = 16, exact: bool = True, probe=rademacher_like,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x) = log N(z(1); 0, I) + int_0^1 tr(df/dz) dt, shape (B,). Eq. (eq-flows-instantaneous)."""
        z, log_det = self(x, n_steps=n_steps, exact=exact, probe=probe, generator=generator)
        log_base = standard_normal_log_prob(z)  # (B,)
        return log_base + log_det

    @torch.no_grad()
    def inverse(self, z: torch.Tensor, n_steps: int = 16) -> torch.Tensor:
        """x = z(0) from z = z(1): the same ODE integrated backwards from t = 1 to t = 0, shape (B, D)."""
        self._check(z, n_steps)
        return integrate(self.field, z, torch.linspace(1, 0, n_steps + 1))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, n_steps: int = 16) -> torch.Tensor:
        """n samples (n, D): z(1) ~ N(0, I) drawn on the CPU, then integrated back to t = 0."""
        check_positive_int(n, "n")
        param = next(self.parameters())
        z1 = torch.randn(n, self.dim, generator=generator, dtype=param.dtype).to(param.device)
        return self.inverse(z1, n_steps=n_steps)

    @torch.no_grad()
    def trajectory(self, x: torch.Tensor, n_steps: int = 16, inverse: bool = False) -> list[torch.Tensor]:
        """The states (B, D) at the n_steps + 1 grid times: data -> latent, or latent -> data if inverse."""
        self._check(x, n_steps)
        ts = torch.linspace(1, 0, n_steps + 1) if inverse else torch.linspace(0, 1, n_steps + 1)
        return integrate(self.field, x, ts, return_path=True)[1]


# -- the recipe of notebook 02c and benchmark 2 -------------------------------------------------------
def fit_cnf(model: CNF, data, *, schedule=((400, 1e-2), (200, 2e-3)), batch_size: int = 128,
            solver_steps: int = 8, exact: bool = True, probe=rademacher_like,
            generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Maximum likelihood for a CNF: Adam through `solver_steps` RK4 steps per solve; returns the per-step losses.

    `schedule` holds (training steps, learning rate) phases, each with a fresh Adam (400 steps at 1e-2,
    then 200 at 2e-3: the recipe of notebook 02c). exact=True trains with the exact trace; exact=False
    with Hutchinson's estimator, one `probe(x, generator)` per solve (Eq. (eq-flows-hutchinson)), as
    benchmark 2 also does. `data` is a tensor of examples or a sampler `data(n)`, as in `dgm.train.train`.
    """
    check_positive_int(solver_steps, "solver_steps")

    def loss(m: CNF, x: torch.Tensor) -> torch.Tensor:  # (B,): -log p(x), exact or estimated trace
        return -m.log_prob(x, n_steps=solver_steps, exact=exact, probe=probe, generator=generator)

    history = []
    for n_steps, lr in schedule:
        history += train(model, loss, data, n_steps, batch_size, lr=lr, generator=generator, progress=progress)
    return history
