"""dgm.langevin: the discretised chain against its closed-form stationary Gaussian, the weight
blindness of the plain sampler and the weight recovery of the annealed one, on exact mixtures."""
import math

import pytest
import torch
from conftest import gen

from dgm.data import two_modes as two_modes_of
from dgm.langevin import annealed_langevin, langevin


def two_modes(weights):
    """dgm.data.two_modes in float64: Gaussians at (-2.5, 0) and (2.5, 0), std 0.5, the weights given."""
    return two_modes_of(weights).to(dtype=torch.float64)


def test_langevin_reaches_gaussian():
    """Eq. (eq-sm-langevin), Thm. (thm-sm-langevin-stationary): the chain settles on N(mu, C_eps), C_eps -> Sigma."""
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    Sigma = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    P = torch.linalg.inv(Sigma)
    score = lambda x: -(x - mu) @ P  # noqa: E731 (exact score of N(mu, Sigma); P symmetric)
    eps, n = 0.1, 20_000
    # the discretised chain x' = mu + (I - eps P)(x - mu) + sqrt(2 eps) z is linear-Gaussian: its
    # stationary covariance solves C = A C A^T + 2 eps I with A = I - eps P; in Sigma's eigenbasis
    # (eigenvalues lam) it is lam / (1 - eps / (2 lam)), wider than Sigma by O(eps)
    lam, U = torch.linalg.eigh(Sigma)
    C_eps = U @ torch.diag(lam / (1 - eps / (2 * lam))) @ U.T
    A = torch.eye(2, dtype=torch.float64) - eps * P
    torch.testing.assert_close(A @ C_eps @ A.T + 2 * eps * torch.eye(2, dtype=torch.float64), C_eps)
    # started at mu, 150 steps contract the initial (zero) covariance's gap by (1 - eps / lam_max)^300 < 1e-8
    x = langevin(score, mu.expand(n, 2), eps, 150, generator=gen(0))
    # mean: each coordinate within 4 standard errors sqrt(C_ii / n)
    assert torch.all((x.mean(0) - mu).abs() < 4 * torch.sqrt(torch.diag(C_eps) / n))
    # covariance: entry (i, j) of a Gaussian sample covariance has SE sqrt((C_ii C_jj + C_ij^2) / n)
    se = torch.sqrt((torch.outer(torch.diag(C_eps), torch.diag(C_eps)) + C_eps**2) / n)
    assert torch.all((torch.cov(x.T) - C_eps).abs() < 4 * se)
    # the O(eps) bias is real and is what the closed form says: Sigma itself is out of reach at this eps
    assert (torch.cov(x.T) - Sigma).abs().max() > 4 * se.max()
    # and it shrinks with eps as the closed form says: chains moved on from C_eps at eps / 5 (300 steps: the
    # gap of about 0.09 contracts by (1 - eps / (5 lam_max))^600 < 1e-3) have total variance tr C_{eps/5},
    # nearer tr Sigma by about 4 eps / 5 = 0.09, against an SE of a Gaussian sample's total variance of
    # sqrt(2 tr C^2 / m) ~ 0.007
    m = 100_000
    C_small = U @ torch.diag(lam / (1 - eps / 5 / (2 * lam))) @ U.T
    x_large = langevin(score, mu.expand(m, 2), eps, 150, generator=gen(2))
    x_small = langevin(score, x_large, eps / 5, 300, generator=gen(1))
    trace_se = lambda C: torch.sqrt(2 * torch.trace(C @ C) / m)  # noqa: E731
    tr_small, tr_large = torch.trace(torch.cov(x_small.T)), torch.trace(torch.cov(x_large.T))
    assert abs(tr_small - torch.trace(C_small)) < 4 * trace_se(C_small)
    assert tr_large - tr_small > 4 * math.hypot(trace_se(C_small), trace_se(C_eps))


def test_langevin_is_blind_to_mixture_weights():
    """Eq. (eq-sm-mixture-weights): near separated modes the score, and so the chain, does not see the weights."""
    p, q = two_modes([0.2, 0.8]), two_modes([0.5, 0.5])
    # 1. the two scores agree wherever one component dominates (|x_1| > 1 here): the difference is the
    #    change in the other component's responsibility times the difference of component scores
    x = torch.stack([torch.linspace(-5, 5, 401, dtype=torch.float64), torch.zeros(401, dtype=torch.float64)], 1)
    away = x[:, 0].abs() > 1
    assert (p.score(x[away]) - q.score(x[away])).abs().max() < 1e-3
    # 2. chains driven by the same noise from the same symmetric start end in the same places
    n = 2000
    x0 = 2.0 * torch.randn(n, 2, generator=gen(1), dtype=torch.float64)
    xp = langevin(p.score, x0, 0.02, 500, generator=gen(2))
    xq = langevin(q.score, x0, 0.02, 500, generator=gen(2))
    same_mode = ((xp[:, 0] < 0) == (xq[:, 0] < 0)).double().mean()
    assert same_mode > 0.95  # only chains that start near the saddle x_1 = 0, where the weights matter, may differ
    # 3. so the left mode holds about the start's share (1/2), not its weight 0.2: with SE sqrt(0.25 / n)
    left = (xp[:, 0] < 0).double().mean()
    start_left = (x0[:, 0] < 0).double().mean()
    se = math.sqrt(0.25 / n)
    assert abs(left - start_left) < 4 * se
    assert left - 0.2 > 10 * se


def test_annealed_langevin_recovers_weights():
    """Eq. (eq-sm-annealed): with the exact noised scores, annealed Langevin puts weight 0.2 on the small mode."""
    p = two_modes([0.2, 0.8])
    sigmas = torch.logspace(-1, math.log10(5.0), 10)  # sigma_1 = 0.1 < ... < sigma_10 = 5 (the modes are 5 apart)
    score = lambda x, sigma: p.noised_score(x, 1.0, sigma)  # noqa: E731 (exact, Eq. of the noised mixture)
    n = 2000
    x0 = 5.0 * torch.randn(n, 2, generator=gen(3), dtype=torch.float64)  # start at about the widest noised density
    x = annealed_langevin(score, x0, sigmas, step_size=0.1 * 0.1**2, n_steps_each=100, generator=gen(4))
    # a binomial share: SE sqrt(w (1 - w) / n) = 0.009. The finite chains keep a small excess on the small
    # mode (about 0.01 at 100 steps per level, measured with 20 000 chains; it shrinks with more steps):
    # 4 SE covers it
    left = (x[:, 0] < 0).double().mean()
    assert abs(left - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n), left.item()
    # the modes' shapes too: the target of the last level is the data noised at sigma_1, std sqrt(0.5^2 + 0.1^2).
    # Tolerance: 4 SE of a sample std (s / sqrt(2 m)) plus 0.02, because the last levels' steps are short next
    # to the mode's variance (eps_1 = 0.001 vs 0.26), so the chains keep part of the previous level's width
    target = math.sqrt(0.5**2 + 0.1**2)
    for mode in (x[x[:, 0] < 0], x[x[:, 0] > 0]):
        assert (mode.std(0) - target).abs().max() < 4 * target / math.sqrt(2 * len(mode)) + 0.02


def test_langevin_path_and_steps():
    """Eq. (eq-sm-annealed): the annealed path has L * n_steps_each + 1 states and the step grows as sigma_i^2."""
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    sigmas = [0.5, 1.0, 2.0]
    seen = []
    zero_score = lambda x, sigma: seen.append(sigma) or torch.zeros_like(x)  # noqa: E731
    x, path = annealed_langevin(zero_score, x0, sigmas, step_size=0.01, n_steps_each=4, generator=gen(5),
                                return_path=True)
    assert len(path) == 13 and torch.equal(path[-1], x) and torch.equal(path[0], x0)
    assert seen == [2.0] * 4 + [1.0] * 4 + [0.5] * 4  # visited from the largest level down
    # with a zero score the chain is a random walk: at level i, steps of variance 2 eps_i,
    # eps_i = 0.01 sigma_i^2 / sigma_1^2, so the increments are N(0, 2 eps_i) exactly (replay the draws)
    g = gen(5)
    expected = x0.clone()
    for sigma in (2.0, 1.0, 0.5):
        for _ in range(4):
            z = torch.randn(3, 2, generator=g, dtype=x0.dtype)
            expected = expected + math.sqrt(2 * 0.01 * sigma**2 / 0.25) * z
    torch.testing.assert_close(x, expected)
    x, path = langevin(lambda x: -x, x0, 0.1, 5, generator=gen(6), return_path=True)
    assert len(path) == 6 and torch.equal(path[-1], x)


def test_bad_input():
    """Eq. (eq-sm-annealed): step size <= 0, no steps, an empty ladder and a non-increasing ladder raise ValueError."""
    x = torch.zeros(4, 2)
    score = lambda x: -x  # noqa: E731
    nc_score = lambda x, sigma: -x  # noqa: E731
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="step_size must be finite and > 0"):
            langevin(score, x, bad, 10)
        with pytest.raises(ValueError, match="step_size must be finite and > 0"):
            annealed_langevin(nc_score, x, [0.1, 1.0], bad, 10)
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        langevin(score, x, 0.1, 0)
    with pytest.raises(ValueError, match="n_steps_each must be a positive int"):
        annealed_langevin(nc_score, x, [0.1, 1.0], 0.1, 2.5)
    with pytest.raises(ValueError, match="non-empty"):
        annealed_langevin(nc_score, x, [], 0.1, 10)
    for ladder in ([1.0, 0.1], [0.1, 0.1, 1.0], [1.0, 0.5, 0.1]):
        with pytest.raises(ValueError, match="strictly increasing"):
            annealed_langevin(nc_score, x, ladder, 0.1, 10)
    with pytest.raises(ValueError, match="sigmas must be finite and > 0"):
        annealed_langevin(nc_score, x, [-0.1, 1.0], 0.1, 10)


def test_annealed_langevin_final_tweedie_step():
    """Eq. (eq-prob-tweedie): denoise=True ends with x + sigma_1^2 score(x, sigma_1), the posterior mean E[x_0 | x]."""
    p = two_modes([0.2, 0.8])
    sigmas = torch.logspace(-1, math.log10(5.0), 10)
    score = lambda x, sigma: p.noised_score(x, 1.0, sigma)  # noqa: E731 (exact noised score)
    x0 = 5.0 * torch.randn(500, 2, generator=gen(7), dtype=torch.float64)
    # the same draws with and without the final step: it adds one deterministic state and no noise
    x_last, path = annealed_langevin(score, x0, sigmas, 0.001, 20, generator=gen(8), return_path=True)
    x_den, path_den = annealed_langevin(score, x0, sigmas, 0.001, 20, generator=gen(8), return_path=True,
                                        denoise=True)
    assert len(path_den) == len(path) + 1 == 10 * 20 + 2 and torch.equal(path_den[-1], x_den)
    torch.testing.assert_close(path_den[-2], x_last)
    # oracle: the exact posterior mean of the clean point given x_t = x_0 + sigma_1 eps, computed from the
    # mixture's component posteriors (GaussianMixture.denoise), not from the score
    torch.testing.assert_close(x_den, p.denoise(x_last, 1.0, sigmas[0].item()))
    # a posterior mean has less spread than a sample: each mode's std shrinks by s^2 / (s^2 + sigma_1^2)
    # around its mean, from sqrt(s^2 + sigma_1^2) to s^2 / sqrt(s^2 + sigma_1^2)
    right = x_den[:, 0] > 0
    torch.testing.assert_close((x_den[right] - 2.5).std(0), (x_last[right] - 2.5).std(0) * 0.25 / 0.26,
                               rtol=1e-3, atol=1e-3)


def test_score_shape_must_match_x():
    """Eq. (eq-sm-langevin): a score whose output shape differs from x raises a ValueError naming both shapes."""
    x = torch.zeros(4, 2)
    for bad in (lambda x: x[:, :1], lambda x: x.sum(1), lambda x: x[:1]):  # (4, 1), (4,), (1, 2): all broadcast
        with pytest.raises(ValueError, match=r"score\(x\) and x must have the same shape, got score\(x\) "
                                             r"\((4, 1|4,|1, 2)\) and x \(4, 2\)"):
            langevin(bad, x, 0.1, 3)
        with pytest.raises(ValueError, match=r"score\(x, sigma\) and x must have the same shape, .* and x \(4, 2\)"):
            annealed_langevin(lambda x, sigma, bad=bad: bad(x), x, [0.1, 1.0], 0.1, 3)
        calls = []  # a score that goes wrong only in the final Tweedie call, after the 2 x 3 Langevin steps
        late = lambda x, sigma, bad=bad, calls=calls: bad(x) if calls.append(0) or len(calls) > 6 else -x  # noqa: E731
        with pytest.raises(ValueError, match=r"score\(x, sigma\) and x must have the same shape"):
            annealed_langevin(late, x, [0.1, 1.0], 0.1, 3, denoise=True)
        assert len(calls) == 7
