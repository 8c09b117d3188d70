"""dgm.cnf: the divergence against autograd Jacobians, Hutchinson's estimator against its closed-form
mean and variance, a linear ODE against its closed-form density, the RK4 solver against torchdiffeq."""
import math

import pytest
import torch
import torchdiffeq  # test-only oracle: dgm itself never imports it
from conftest import gen

from dgm.cnf import CNF, divergence_exact, divergence_hutchinson, gaussian_like, integrate, rademacher_like


def random_field(dim, seed):
    """A smooth nonlinear field (B, D) -> (B, D) in float64, coupling every coordinate."""
    g = gen(seed)
    W1 = torch.randn(dim, 16, generator=g, dtype=torch.float64)
    W2 = torch.randn(16, dim, generator=g, dtype=torch.float64)
    b = torch.randn(16, generator=g, dtype=torch.float64)
    return lambda z: torch.tanh(z @ W1 + b) @ W2 / 4 + torch.sin(z)


def random_cnf(dim, seed):
    torch.manual_seed(seed)
    return CNF(dim, hidden=16).double()


class LinearField(torch.nn.Module):
    """f(z, t) = A z: the ODE's solution is z(t) = expm(t A) z(0)."""

    def __init__(self, A):
        super().__init__()
        self.A = torch.nn.Parameter(A)

    def forward(self, z, t):
        return z @ self.A.T


def test_exact_divergence_matches_jacobian_trace():
    """Eq. (eq-flows-instantaneous): divergence_exact == trace of the autograd Jacobian, per example."""
    f = random_field(4, seed=0)
    z = torch.randn(6, 4, generator=gen(1), dtype=torch.float64)
    traces = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v[None])[0], zi).trace() for zi in z])
    torch.testing.assert_close(divergence_exact(f, z), traces)
    # the CNF's own field at a fixed time, passed as the tensor f(z) computed from z
    cnf = random_cnf(3, seed=2)
    z = torch.randn(5, 3, generator=gen(3), dtype=torch.float64).requires_grad_(True)
    traces = torch.stack([torch.autograd.functional.jacobian(lambda v: cnf.field(v[None], 0.3)[0], zi).trace()
                          for zi in z.detach()])
    torch.testing.assert_close(divergence_exact(cnf.field(z, 0.3), z), traces)


@pytest.mark.parametrize("probe", [gaussian_like, rademacher_like])
def test_hutchinson_is_unbiased(probe):
    """Eq. (eq-flows-hutchinson): the mean of eps^T (df/dz) eps over many probes is within 4 SE of tr(df/dz)."""
    f = random_field(5, seed=4)
    z = torch.randn(1, 5, generator=gen(5), dtype=torch.float64).expand(20_000, 5)  # one point, many probes
    eps = probe(z, gen(6))
    assert torch.allclose(eps.pow(2).mean(0), torch.ones(5, dtype=eps.dtype), atol=0.05)  # E[eps eps^T] = I
    estimates = divergence_hutchinson(f, z, eps)  # (50 000,)
    exact = divergence_exact(f, z[:1])[0]
    se = estimates.std() / math.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) < 4 * se, (estimates.mean(), exact, se)
    # the CNF's log-density with one probe per integration is unbiased too
    cnf = random_cnf(2, seed=7)
    x = torch.randn(1, 2, generator=gen(8), dtype=torch.float64).expand(4000, 2)
    with torch.no_grad():
        noisy = cnf.log_prob(x, n_steps=2, exact=False, probe=probe, generator=gen(9))
        exact = cnf.log_prob(x[:1], n_steps=2)[0]
    se = noisy.std() / math.sqrt(len(noisy))
    assert noisy.std() > 0 and abs(noisy.mean() - exact) < 4 * se, (noisy.mean(), exact, se)


def test_hutchinson_variance():
    """Eq. (eq-flows-hutchinson-variance): Var[eps^T J eps] = 2 ||J_sym||_F^2 (Gaussian) and
    2 sum_{i != j} (J_sym)_ij^2 (Rademacher), checked by Monte Carlo within 4 SE of the sample variance."""
    J = torch.randn(4, 4, generator=gen(10), dtype=torch.float64) + 2 * torch.eye(4, dtype=torch.float64)
    J_sym = (J + J.T) / 2
    closed = {gaussian_like: 2 * J_sym.pow(2).sum(),
              rademacher_like: 2 * (J_sym.pow(2).sum() - J.diagonal().pow(2).sum())}
    z = torch.zeros(200_000, 4, dtype=torch.float64)
    variances = {}
    for probe, var in closed.items():
        estimates = divergence_hutchinson(lambda v: v @ J.T, z, probe(z, gen(11)))  # df/dz = J
        sq_dev = (estimates - J.trace()) ** 2  # the mean is known, so Var is the mean of these
        se = sq_dev.std() / math.sqrt(len(sq_dev))
        variances[probe] = sq_dev.mean()
        assert abs(variances[probe] - var) < 4 * se, (probe.__name__, variances[probe], var, se)
    assert variances[rademacher_like] < variances[gaussian_like]  # the diagonal adds no noise with +-1 probes


def test_linear_ode_log_density():
    """Eq. (eq-flows-instantaneous): for f(z) = A z, z(1) = expm(A) x and int tr(A) dt = log det expm(A),
    so the CNF's density is N(x; 0, (M^T M)^{-1}) with M = expm(A), by torch.distributions."""
    A = torch.tensor([[-0.3, 0.9], [-0.4, 0.5]], dtype=torch.float64)
    M = torch.linalg.matrix_exp(A)
    cnf = CNF(2).double()
    cnf.field = LinearField(A)
    x = 2 * torch.randn(100, 2, generator=gen(12), dtype=torch.float64)
    z, log_det = cnf(x, n_steps=16)
    torch.testing.assert_close(z, x @ M.T, rtol=0, atol=1e-6)  # RK4 error ~ h^4 ||A||^5 / 120
    torch.testing.assert_close(log_det, A.trace().expand(100), rtol=0, atol=1e-12)  # the trace is constant
    truth = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), precision_matrix=M.T @ M)
    torch.testing.assert_close(cnf.log_prob(x, n_steps=16), truth.log_prob(x), rtol=0, atol=1e-5)
    # sampling integrates back: x = M^{-1} z, covariance M^{-1} M^{-T} (MC within 4 SE per entry)
    samples = cnf.sample(40_000, gen(13))
    cov = torch.linalg.inv(M.T @ M)
    se = (cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2).sqrt() / math.sqrt(len(samples))
    assert torch.all((torch.cov(samples.T) - cov).abs() < 4 * se)


def test_solver_matches_torchdiffeq():
    """Eq. (eq-flows-instantaneous): the fixed-step RK4 loop that solves the ODE agrees with
    torchdiffeq.odeint (dopri5, tolerance 1e-12) to 1e-5 with 32 steps, and its error falls like h^4
    (halving h divides it by about 16)."""
    cnf = random_cnf(2, seed=14)
    with torch.no_grad():
        cnf.field.net[-1].weight.mul_(8)  # a strongly nonlinear field, so the solver's error is visible
        x = 1.5 * torch.randn(64, 2, generator=gen(15), dtype=torch.float64)
        ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
        oracle = torchdiffeq.odeint(lambda t, z: cnf.field(z, t), x, ts, rtol=1e-12, atol=1e-12)[-1]
        errors = [(integrate(cnf.field, x, torch.linspace(0, 1, n + 1)) - oracle).abs().max() for n in (8, 16, 32)]
        # backwards in time returns to the start
        back, path = integrate(cnf.field, oracle, torch.linspace(1, 0, 33), return_path=True)
    assert errors[-1] < 1e-5, errors
    assert 8 < errors[0] / errors[1] < 32 and 8 < errors[1] / errors[2] < 32, errors  # fourth order
    assert len(path) == 33 and (back - x).abs().max() < 1e-5


def test_cnf_density_integrates_to_one():
    """Eq. (eq-flows-instantaneous): exp(log_prob) of a random 2-D CNF sums to 1 on a grid (Riemann sum)."""
    cnf = random_cnf(2, seed=16)
    with torch.no_grad():
        cnf.field.net[-1].weight.mul_(5)  # a field far from zero, so the density is far from N(0, I)
        xs = torch.linspace(-7, 7, 81, dtype=torch.float64)
        grid = torch.cartesian_prod(xs, xs)  # (81^2, 2)
        density = cnf.log_prob(grid, n_steps=8).exp()
        base = torch.distributions.Normal(0.0, 1.0).log_prob(grid).sum(1).exp().double()
    cell = (xs[1] - xs[0]) ** 2
    assert (density - base).abs().max() > 0.01  # the flow moved the mass
    assert abs(density.sum() * cell - 1) < 1e-4  # observed ~1e-6: solver error, mass beyond the box


@pytest.mark.parametrize("exact", [True, False])
def test_log_prob_gradient_matches_finite_differences(exact):
    """Eq. (eq-flows-instantaneous), Eq. (eq-flows-hutchinson): training differentiates through the
    integrated trace: the autograd gradient of the mean log-density (exact, or Hutchinson with a fixed
    probe) equals central finite differences (float64)."""
    cnf = random_cnf(2, seed=17)
    x = torch.randn(32, 2, generator=gen(18), dtype=torch.float64)
    params = list(cnf.parameters())

    def mean_log_prob():
        return cnf.log_prob(x, n_steps=2, exact=exact, generator=gen(19)).mean()

    grads = torch.autograd.grad(mean_log_prob(), params)
    directions = [torch.randn(p.shape, generator=gen(20 + i), dtype=p.dtype) for i, p in enumerate(params)]

    @torch.no_grad()
    def mean_log_prob_at(step):  # at theta + step * v, then theta is restored
        for p, v in zip(params, directions):
            p.add_(step * v)
        value = mean_log_prob()
        for p, v in zip(params, directions):
            p.sub_(step * v)
        return value

    delta = 1e-5
    finite_difference = (mean_log_prob_at(delta) - mean_log_prob_at(-delta)) / (2 * delta)
    autograd = sum((g * v).sum() for g, v in zip(grads, directions))
    assert abs(autograd) > 1e-3
    torch.testing.assert_close(autograd, finite_difference, rtol=1e-6, atol=1e-8)


def test_bad_input():
    """Zero steps, a wrong dimension, a short grid or a mis-shaped probe raise ValueError naming both shapes."""
    cnf = CNF(2)
    with pytest.raises(ValueError, match="n_steps must be a positive int, got 0"):
        cnf.log_prob(torch.zeros(4, 2), n_steps=0)
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(4, 3\)"):
        cnf.log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(4, 3\)"):
        cnf.inverse(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="n_steps"):
        cnf.sample(3, n_steps=0)
    with pytest.raises(ValueError, match="at least 2 times"):
        integrate(lambda z, t: z, torch.zeros(4, 2), torch.tensor([0.0]))
    with pytest.raises(ValueError, match=r"shape of z, \(4, 2\), got \(4, 3\)"):
        divergence_hutchinson(lambda z: z, torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dim must be a positive int"):
        CNF(0)
