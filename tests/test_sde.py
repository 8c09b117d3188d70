"""Checks of dgm.sde (chapter 9): each SDE's closed-form marginal against a simulation of the SDE
itself, against the Fokker-Planck equation, and the reverse-time SDE and the probability-flow ODE
against the data they must carry the prior back to. The oracles use only f and g (or torchdiffeq)."""
import math

import pytest
import torch
from torchdiffeq import odeint

from dgm import sde as sdes
from dgm.data import GaussianMixture

SDES = {"VP": sdes.VPSDE(), "sub-VP": sdes.SubVPSDE(), "VE": sdes.VESDE(sigma_max=5.0)}


def _euler_maruyama(drift, diffusion, x, t0, t1, n_steps, generator):
    """x_{k+1} = x_k + f dt + g sqrt(|dt|) z: the simulation oracle (dt < 0 runs backwards in time)."""
    ts = torch.linspace(t0, t1, n_steps + 1, dtype=torch.float64)
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        dt = (t_next - t_cur).item()
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x + drift(x, t_cur.item()) * dt + diffusion(t_cur.item()) * math.sqrt(abs(dt)) * z
    return x


@pytest.mark.parametrize("name", SDES)
def test_marginal_matches_a_simulation_of_the_sde(name):
    """q(x_t | x_0) = N(alpha_t x_0, sigma_t^2): the mean and variance of 40 000 Euler-Maruyama paths
    (2000 steps) from x_0 = 1.5 to t = 0.25 agree within 5 standard errors plus the scheme's O(dt) bias."""
    sde, n, x0, t = SDES[name], 40_000, 1.5, 0.25
    generator = torch.Generator().manual_seed(0)
    x = torch.full((n, 1), x0, dtype=torch.float64)
    xt = _euler_maruyama(sde.drift, lambda s: sde.diffusion(torch.tensor(s, dtype=torch.float64)),
                         x, 0.0, t, 2000, generator)
    alpha, sigma = (v.item() for v in sde.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    mean_se, var_se = sigma / math.sqrt(n), sigma**2 * math.sqrt(2 / (n - 1))
    assert abs(xt.mean().item() - alpha * x0) < 5 * mean_se + 2e-3 * abs(alpha * x0)
    assert abs(xt.var().item() - sigma**2) < 5 * var_se + 2e-3 * sigma**2


@pytest.mark.parametrize("name", SDES)
def test_marginal_solves_the_fokker_planck_equation(name):
    """d p_t / dt = -d(f p_t)/dx + g^2 / 2 d^2 p_t / dx^2 for the noised 1-D mixture p_t, at t = 0.3:
    finite differences (float64) of the closed-form density on both sides."""
    sde = SDES[name]
    p0 = GaussianMixture(torch.tensor([[-1.0], [0.5], [2.0]], dtype=torch.float64),
                         torch.tensor([0.3, 0.2, 0.4], dtype=torch.float64), torch.tensor([0.3, 0.5, 0.2]))
    x = torch.linspace(-3, 4, 141, dtype=torch.float64)[:, None]

    def p(x, t):
        alpha, sigma = (v.item() for v in sde.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
        return p0.noised_log_prob(x, alpha, sigma).exp()

    t, ht, hx = 0.3, 1e-5, 1e-3
    dp_dt = (p(x, t + ht) - p(x, t - ht)) / (2 * ht)

    def flux(x):  # f(x, t) p_t(x)
        return sde.drift(x, torch.full((len(x),), t, dtype=torch.float64))[:, 0] * p(x, t)

    d_flux = (flux(x + hx) - flux(x - hx)) / (2 * hx)
    d2p = (p(x + hx, t) - 2 * p(x, t) + p(x - hx, t)) / hx**2
    g2 = sde.diffusion(torch.tensor(t, dtype=torch.float64)).item() ** 2
    rhs = -d_flux + 0.5 * g2 * d2p
    assert torch.allclose(dp_dt, rhs, atol=1e-5 * dp_dt.abs().max().item() + 1e-9), (dp_dt - rhs).abs().max()


def _gaussian_data():
    return GaussianMixture(torch.tensor([[1.0, -0.5]], dtype=torch.float64), torch.tensor([[0.5, 0.25]]))


def _exact_score(sde, p0):
    def score(x, t):
        alpha, sigma = sde.alpha_sigma(torch.as_tensor(t, dtype=torch.float64).expand(len(x)))
        return p0.noised_score(x, alpha, sigma)
    return score


@pytest.mark.parametrize("name", SDES)
def test_probability_flow_ode_carries_p1_to_the_data(name):
    """With the exact score, the ODE dx = [f - g^2 s / 2] dt (torchdiffeq dopri5, tight tolerances)
    maps samples of p_1 to samples of p_eps: mean and std within 5 standard errors."""
    sde, p0, eps, n = SDES[name], _gaussian_data(), 1e-3, 4000
    generator = torch.Generator().manual_seed(1)
    alpha1, sigma1 = (v.item() for v in sde.alpha_sigma(torch.tensor(1.0, dtype=torch.float64)))
    x1 = alpha1 * p0.sample(n, generator) + sigma1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    score = _exact_score(sde, p0)

    def f(t, x):  # dopri5's trial stages may step just past t = eps, where sigma_t -> 0: stay inside
        return sdes.probability_flow_drift(sde, score, x, t.clamp(min=eps / 2).expand(len(x)))

    x_eps = odeint(f, x1, torch.tensor([1.0, eps], dtype=torch.float64), method="dopri5", rtol=1e-8, atol=1e-8)[-1]
    alpha, sigma = (v.item() for v in sde.alpha_sigma(torch.tensor(eps, dtype=torch.float64)))
    std = torch.sqrt(alpha**2 * p0.stds[0] ** 2 + sigma**2)
    assert torch.all((x_eps.mean(0) - alpha * p0.means[0]).abs() < 5 * std / math.sqrt(n))
    assert torch.all((x_eps.std(0) - std).abs() < 5 * std / math.sqrt(2 * n))


@pytest.mark.parametrize("name", SDES)
def test_reverse_sde_carries_p1_to_the_data(name):
    """Anderson's reverse SDE dx = [f - g^2 s] dt + g dW-bar, simulated backwards (1000 Euler-Maruyama
    steps, exact score) from p_1 to t = 1e-3: mean and std within 5 SE plus 5 % for the scheme's bias."""
    sde, p0, n = SDES[name], _gaussian_data(), 20_000
    generator = torch.Generator().manual_seed(2)
    alpha1, sigma1 = (v.item() for v in sde.alpha_sigma(torch.tensor(1.0, dtype=torch.float64)))
    x1 = alpha1 * p0.sample(n, generator) + sigma1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    score = _exact_score(sde, p0)
    x = _euler_maruyama(lambda x, t: sdes.reverse_drift(sde, score, x, torch.full((len(x),), t)),
                        lambda t: sde.diffusion(torch.tensor(t, dtype=torch.float64)), x1, 1.0, 1e-3, 1000, generator)
    std = p0.stds[0]
    assert torch.all((x.mean(0) - p0.means[0]).abs() < 5 * std / math.sqrt(n) + 0.05 * std)
    assert torch.all((x.std(0) - std).abs() < 5 * std / math.sqrt(2 * n) + 0.05 * std)


def test_prior_log_prob_is_the_gaussian_density():
    sde = sdes.VESDE(sigma_max=5.0)
    x = sdes.prior_sample(sde, (7, 3), torch.Generator().manual_seed(3)).double()
    expected = torch.distributions.Normal(0.0, 5.0).log_prob(x).sum(1)
    assert torch.allclose(sdes.prior_log_prob(sde, x), expected, atol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="beta_min < beta_max"):
        sdes.VPSDE(beta_min=5.0, beta_max=1.0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        sdes.VESDE(sigma_min=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sdes.VPSDE().alpha_sigma(1.5)
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="same shape"):
        sdes.probability_flow_drift(sdes.VPSDE(), lambda x, t: x[:, :1], x, torch.full((4,), 0.5))
    with pytest.raises(ValueError, match="shape"):
        sdes.reverse_drift(sdes.VPSDE(), lambda x, t: x, x, torch.full((3,), 0.5))
