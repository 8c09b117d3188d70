"""dgm.data: the exact toy oracles against independent computations (autograd, Monte Carlo, Tweedie)."""
import math

import pytest
import torch
from conftest import gen

from dgm.data import GaussianMixture, eight_gaussians, ring, swiss_roll, two_modes, two_moons

TOY_SETS = [eight_gaussians, two_moons, swiss_roll, ring]


def random_mixture(K=5, D=2, seed=0):
    g = gen(seed)
    return GaussianMixture(torch.randn(K, D, generator=g, dtype=torch.float64) * 2,
                           0.3 + torch.rand(K, D, generator=g, dtype=torch.float64),
                           torch.rand(K, generator=g, dtype=torch.float64) + 0.1)


@pytest.mark.parametrize("make", TOY_SETS)
def test_score_equals_autograd_of_log_prob(make):
    """Eq. (eq-prob-mixture-score): the closed-form mixture score equals autograd of log_prob."""
    p = make().to(dtype=torch.float64)
    x = p.sample(200, gen(1)).requires_grad_(True)
    (grad,) = torch.autograd.grad(p.log_prob(x).sum(), x)
    torch.testing.assert_close(p.score(x.detach()), grad, rtol=1e-9, atol=1e-9)  # float64: exact up to rounding


def test_noised_score_equals_autograd_of_noised_log_prob():
    """Eq. (eq-prob-mixture-score) at noise level (alpha, sigma), with per-example alpha and sigma."""
    p = random_mixture()
    xt = torch.randn(100, 2, generator=gen(2), dtype=torch.float64).requires_grad_(True)
    alpha = torch.rand(100, generator=gen(3), dtype=torch.float64) + 0.1
    sigma = torch.rand(100, generator=gen(4), dtype=torch.float64) + 0.05
    (grad,) = torch.autograd.grad(p.noised_log_prob(xt, alpha, sigma).sum(), xt)
    torch.testing.assert_close(p.noised_score(xt.detach(), alpha, sigma), grad, rtol=1e-9, atol=1e-9)


def test_log_prob_integrates_to_one():
    """The toy densities are normalised: a fine grid quadrature of exp(log_prob) over a wide box is 1."""
    for make in TOY_SETS:
        p = make().to(dtype=torch.float64)
        xs = torch.linspace(-6, 6, 241, dtype=torch.float64)
        xx, yy = torch.meshgrid(xs, xs, indexing="xy")
        mass = p.log_prob(torch.stack([xx.ravel(), yy.ravel()], 1)).exp().sum() * (xs[1] - xs[0]) ** 2
        # The rectangle rule on a Gaussian of std s with spacing h errs by ~exp(-2 pi^2 s^2 / h^2):
        # s >= 0.12, h = 0.05 gives ~1e-49; the box [-6, 6]^2 holds all mass to ~20 component stds.
        assert abs(mass.item() - 1) < 1e-4, make.__name__


def test_noised_density_matches_monte_carlo_convolution():
    """Eq. (eq-prob-noised-mixture): p_t(x_t) = E_{x_0 ~ p}[N(x_t; alpha x_0, sigma^2 I)] by Monte Carlo."""
    p, alpha, sigma = two_moons().to(dtype=torch.float64), 0.8, 0.5
    xt = torch.randn(20, 2, generator=gen(5), dtype=torch.float64) * 1.5
    x0 = p.sample(200_000, gen(6))  # (N, 2)
    kern = torch.exp(-((xt[:, None] - alpha * x0[None]) ** 2).sum(-1) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    mc_mean, mc_se = kern.mean(1), kern.std(1) / math.sqrt(x0.shape[0])
    exact = p.noised_log_prob(xt, alpha, sigma).exp()
    assert torch.all((mc_mean - exact).abs() < 4 * mc_se + 1e-12), (mc_mean - exact) / mc_se  # within 4 SE
    # and the noised mixture object describes the same law
    torch.testing.assert_close(p.noised(alpha, sigma).log_prob(xt), p.noised_log_prob(xt, alpha, sigma))


def test_noised_samples_have_the_noised_moments():
    """alpha x_0 + sigma eps has mean alpha m and covariance alpha^2 C + sigma^2 I (C from the mixture)."""
    p, alpha, sigma = eight_gaussians().to(dtype=torch.float64), 0.6, 0.7
    q = p.noised(alpha, sigma)
    torch.testing.assert_close(q.mean(), alpha * p.mean())
    torch.testing.assert_close(q.covariance(), alpha**2 * p.covariance() + sigma**2 * torch.eye(2, dtype=torch.float64))
    x = q.sample(100_000, gen(7))
    se = x.std(0) / math.sqrt(len(x))
    assert torch.all((x.mean(0) - q.mean()).abs() < 4 * se)


def test_denoiser_equals_tweedie():
    """Eq. (eq-prob-tweedie): E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha, score by autograd."""
    p = random_mixture(seed=8)
    xt = torch.randn(100, 2, generator=gen(9), dtype=torch.float64).requires_grad_(True)
    alpha = torch.rand(100, generator=gen(10), dtype=torch.float64) + 0.2
    sigma = torch.rand(100, generator=gen(11), dtype=torch.float64) + 0.1
    (score,) = torch.autograd.grad(p.noised_log_prob(xt, alpha, sigma).sum(), xt)
    tweedie = (xt.detach() + sigma[:, None] ** 2 * score) / alpha[:, None]
    torch.testing.assert_close(p.denoise(xt.detach(), alpha, sigma), tweedie, rtol=1e-9, atol=1e-9)


def test_denoiser_matches_monte_carlo_posterior_mean():
    """Eq. (eq-prob-mixture-posterior-mean): E[x_0 | x_t] by self-normalised importance sampling from the prior.

    The weights are the likelihoods N(x_t; alpha x_0, sigma^2 I) of prior draws x_0.
    """
    p, alpha, sigma = swiss_roll().to(dtype=torch.float64), 0.9, 0.4
    xt = p.noised(alpha, sigma).sample(5, gen(12))
    x0 = p.sample(400_000, gen(13))
    log_w = -((xt[:, None] - alpha * x0[None]) ** 2).sum(-1) / (2 * sigma**2)  # (5, N)
    w = torch.softmax(log_w, 1)
    mc = w @ x0  # (5, 2)
    ess = 1 / (w**2).sum(1)  # effective sample size; SE of a weighted mean ~ posterior std / sqrt(ess)
    post_std = (w @ x0**2 - mc**2).clamp_min(0).sqrt()
    assert torch.all((mc - p.denoise(xt, alpha, sigma)).abs() < 4 * post_std / ess.sqrt()[:, None] + 1e-6)


def test_entropy_estimate_matches_closed_form_gaussian():
    """H of a single diagonal Gaussian: MC estimate within 4 SE of sum_d 0.5 log(2 pi e s_d^2)."""
    stds = torch.tensor([[0.5, 2.0, 1.3]], dtype=torch.float64)
    p = GaussianMixture(torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64), stds)
    est = p.entropy(50_000, gen(14))
    exact = (0.5 * torch.log(2 * math.pi * math.e * stds**2)).sum().item()
    assert abs(est.value - exact) < 4 * est.se


def test_sampling_is_reproducible_and_matches_weights():
    """Component frequencies of `sample` follow the weights (chi-square-like 4 SE check per component)."""
    p = GaussianMixture(torch.tensor([[-10.0], [0.0], [10.0]]), 0.1, torch.tensor([0.2, 0.5, 0.3]))
    x = p.sample(50_000, gen(15))
    torch.testing.assert_close(x, p.sample(50_000, gen(15)))
    freq = torch.stack([(x[:, 0] < -5).double().mean(), (x[:, 0].abs() < 5).double().mean(),
                        (x[:, 0] > 5).double().mean()])
    se = torch.sqrt(p.weights.double() * (1 - p.weights.double()) / len(x))
    assert torch.all((freq - p.weights.double()).abs() < 4 * se)


@pytest.mark.parametrize("make", TOY_SETS)
def test_toy_sets_fit_the_plotting_box(make):
    """Every toy set lives in [-3.5, 3.5]^2 (the shared plotting box) up to rare tail samples."""
    x = make().sample(20_000, gen(16))
    assert (x.abs() > 3.5).any(1).double().mean() < 1e-3


def test_two_modes_is_the_stated_mixture():
    """two_modes is 0.2 N((-2.5, 0), 0.5^2 I) + 0.8 N((2.5, 0), 0.5^2 I) (sec-sm-failures), by torch.distributions."""
    p = two_modes().to(dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor([[-2.5, 0.0], [2.5, 0.0]], dtype=torch.float64), 0.5)
    oracle = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.tensor([0.2, 0.8], dtype=torch.float64)),
        torch.distributions.Independent(normal, 1))
    x = torch.randn(50, 2, generator=gen(17), dtype=torch.float64) * 3
    torch.testing.assert_close(p.log_prob(x), oracle.log_prob(x), rtol=1e-6, atol=1e-6)  # weights stored in float32
    q = two_modes((0.5, 0.5), std=0.3)
    torch.testing.assert_close(q.weights, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(q.stds, torch.full((2, 2), 0.3))


def test_bad_input_raises_value_error():
    p = eight_gaussians()
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        p.log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        p.noised_score(torch.zeros(5, 2), 1.0, 0.0)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        p.denoise(torch.zeros(5, 2), 1.0, -0.1)
    with pytest.raises(ValueError, match="alpha must be"):
        p.noised(0.0, 1.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)=\(5,\)"):
        p.noised_log_prob(torch.zeros(5, 2), torch.ones(4), 1.0)
    with pytest.raises(ValueError, match="stds must be"):
        GaussianMixture(torch.zeros(3, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="stds must be finite and > 0"):
        GaussianMixture(torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="means must have shape"):
        GaussianMixture(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="weights must be"):
        GaussianMixture(torch.zeros(3, 2), 1.0, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="positive int"):
        p.sample(0)
