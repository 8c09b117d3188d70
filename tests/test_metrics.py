"""dgm.metrics on equal and on different distributions, against closed forms."""
import math

import pytest
import torch
from conftest import gen

from dgm.data import GaussianMixture, eight_gaussians, two_moons
from dgm.metrics import bits_per_dim, energy_distance, energy_distance_floor, kl_divergence


def gaussian(mean, std):
    return GaussianMixture(torch.tensor([mean], dtype=torch.float64), torch.tensor([std], dtype=torch.float64))


def test_kl_of_a_distribution_to_itself_is_zero():
    """Eq. (eq-ml-nll-entropy-kl) with q = p: the estimate is exactly 0 (paired differences vanish)."""
    p = two_moons()
    est = kl_divergence(p, p.log_prob, n=5000, generator=gen(0))
    assert est.value == 0.0 and est.se == 0.0


def test_kl_between_gaussians_matches_closed_form():
    """Eq. (eq-ml-nll-entropy-kl): the MC estimate is within 4 SE of torch.distributions' exact KL."""
    p, q = gaussian([0.0, 1.0], [1.0, 0.5]), gaussian([0.5, 0.0], [1.5, 1.0])
    est = kl_divergence(p, q.log_prob, n=50_000, generator=gen(1))
    P = torch.distributions.Independent(torch.distributions.Normal(p.means[0], p.stds[0]), 1)
    Q = torch.distributions.Independent(torch.distributions.Normal(q.means[0], q.stds[0]), 1)
    exact = torch.distributions.kl_divergence(P, Q).item()
    assert abs(est.value - exact) < 4 * est.se
    assert est.value > 10 * est.se  # clearly different distributions are clearly told apart


def test_kl_uses_the_given_test_points():
    p, q = eight_gaussians(), gaussian([0.0, 0.0], [2.0, 2.0]).to(dtype=torch.float32)
    x = p.sample(1000, gen(2))
    est = kl_divergence(p, q.log_prob, x)
    assert est.n == 1000
    assert est.value == pytest.approx((p.log_prob(x) - q.log_prob(x)).double().mean().item())


def test_energy_distance_equal_vs_different():
    """Same law: at the data-vs-data floor; different law: many floors' SEs above it."""
    p, q = eight_gaussians(), two_moons()
    g = gen(3)
    floor = energy_distance_floor(lambda n: p.sample(n, g), 1000, repeats=10)
    same = energy_distance(p.sample(1000, g), p.sample(1000, g))
    diff = energy_distance(p.sample(1000, g), q.sample(1000, g))
    spread = floor.se * math.sqrt(floor.n)  # the std of a single data-vs-data distance
    assert abs(same - floor.value) < 4 * spread
    assert diff > floor.value + 20 * spread
    assert floor.value > 0  # the V-statistic is positive even for equal laws: that is the floor


def test_energy_distance_closed_form_1d():
    """1-D point masses: samples all at a and all at b give 2|a-b| - 0 - 0."""
    x, y = torch.full((10, 1), 1.0), torch.full((7, 1), -2.0)
    assert energy_distance(x, y) == pytest.approx(6.0)


def test_bits_per_dim():
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    torch.testing.assert_close(bits_per_dim(torch.tensor([math.log(4.0)]), 1), torch.tensor([2.0]))


def test_bad_input_raises_value_error():
    p = eight_gaussians()
    with pytest.raises(ValueError, match=r"log_q must return shape \(B,\)"):
        kl_divergence(p, lambda x: x, n=10)
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        kl_divergence(p, p.log_prob, x=torch.zeros(10, 3))
    with pytest.raises(ValueError, match="need two samples"):
        energy_distance(torch.zeros(10, 2), torch.zeros(10, 3))
    with pytest.raises(ValueError, match="repeats must be >= 2"):
        energy_distance_floor(p.sample, 10, repeats=1)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        bits_per_dim(1.0, 0)
