"""dgm.score_matching: the score against torch.distributions and closed forms; Hyvarinen's and
Vincent's identities by Monte Carlo on exact Gaussian-mixture data; the sliced trace against the
exact autograd trace."""
import math

import pytest
import torch
from conftest import gen
from scipy.stats import chi2

from dgm.data import GaussianMixture
from dgm.score_matching import (
    NoiseConditionalScore,
    dsm_loss,
    fisher_divergence,
    hyvarinen_loss,
    jacobian_asymmetry,
    ncsn_loss,
    score_from_log_density,
    sliced_loss,
)


def mixture():
    """A 2-D, three-component mixture with unequal weights and stds, in float64."""
    means = torch.tensor([[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]], dtype=torch.float64)
    stds = torch.tensor([0.6, 0.8, 0.5], dtype=torch.float64)
    return GaussianMixture(means, stds, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


def linear_score(seed):
    """s(x) = A x + b with random A (not symmetric) and b: a model, not a gradient field."""
    g = gen(seed)
    A = torch.randn(2, 2, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    return lambda x: x @ A.T + b


def mlp_score(seed):
    """A random tanh network (B, 2) -> (B, 2): smooth, bounded, with a non-trivial Jacobian."""
    g = gen(seed)
    W1 = torch.randn(2, 16, generator=g, dtype=torch.float64)
    b1 = torch.randn(16, generator=g, dtype=torch.float64)
    W2 = torch.randn(16, 2, generator=g, dtype=torch.float64) / 4
    return lambda x: torch.tanh(x @ W1 + b1) @ W2


def torch_mixture(p):
    """The same mixture as a torch.distributions object: an independent log-density."""
    comps = torch.distributions.Independent(torch.distributions.Normal(p.means, p.stds), 1)
    return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(p.weights), comps)


def test_score_ignores_partition_function():
    """Eq. (eq-sm-z-drops-out): grad log(f / Z) = grad log f for any Z: an unnormalised density gives the score."""
    p = mixture()
    x = p.sample(200, gen(0))
    log_p = torch_mixture(p).log_prob  # normalised, from torch.distributions
    # unnormalised: component weights left unnormalised and the Gaussian constants dropped
    unnormalised = lambda x: torch.logsumexp(  # noqa: E731
        torch.log(3.7 * p.weights) - 0.5 * (((x[:, None] - p.means) / p.stds) ** 2).sum(-1)
        - 2 * torch.log(p.stds[:, 0]), dim=1)
    assert not torch.allclose(unnormalised(x), log_p(x))  # they differ, by log Z
    # exact analytic score of the mixture (responsibility-weighted component scores) as the oracle;
    # float64 autograd against a closed form: agreement to rounding error
    torch.testing.assert_close(score_from_log_density(log_p)(x), p.score(x))
    torch.testing.assert_close(score_from_log_density(unnormalised)(x), p.score(x))
    torch.testing.assert_close(score_from_log_density(lambda x: log_p(x) + 123.4)(x), p.score(x))


@pytest.mark.parametrize("make_model", [linear_score, mlp_score])
def test_hyvarinen_objective_minus_fisher_is_constant(make_model):
    """Thm. (thm-sm-hyvarinen), Eq. (eq-sm-hyvarinen): J_H(s) - J_F(s) = -1/2 E||grad log p||^2 for every model s."""
    p = mixture()
    x = p.sample(20_000, gen(1))
    constant = -0.5 * (p.score(x) ** 2).sum(1)  # per example; its mean is the model-free constant
    for seed in (2, 3):  # two different models of the same family, on the same data
        s = make_model(seed)
        residual = hyvarinen_loss(s, x) - fisher_divergence(s, p.score, x) - constant  # (B,)
        # Monte Carlo over 20 000 exact samples: the mean residual is zero up to 4 standard errors
        se = residual.std() / math.sqrt(len(residual))
        assert abs(residual.mean()) < 4 * se, (residual.mean().item(), se.item())
    # and the objective itself is not the Fisher divergence: the constant is far from zero
    assert abs(constant.mean()) > 100 * constant.std() / math.sqrt(len(constant))


def test_hyvarinen_trace_matches_autograd_jacobian():
    """Eq. (eq-sm-hyvarinen): the exact trace inside hyvarinen_loss equals the trace of the full autograd Jacobian."""
    s = mlp_score(4)
    x = torch.randn(8, 2, generator=gen(5), dtype=torch.float64)
    traces = torch.stack([torch.autograd.functional.jacobian(lambda v: s(v[None])[0], xi).trace() for xi in x])
    # float64, two exact computations of the same quantity: rounding error only
    torch.testing.assert_close(hyvarinen_loss(s, x), traces + 0.5 * (s(x) ** 2).sum(1))


@pytest.mark.parametrize("variance_reduction", [True, False])
def test_sliced_trace_is_unbiased(variance_reduction):
    """Eq. (eq-sm-sliced): over random projections v ~ N(0, I), the sliced loss is within 4 SE of Hyvarinen's."""
    s = mlp_score(6)
    for i, point in enumerate(torch.randn(3, 2, generator=gen(7), dtype=torch.float64)):
        x = point.expand(20_000, 2)  # one point, 20 000 independent projections
        estimates = sliced_loss(s, x, generator=gen(8 + i), variance_reduction=variance_reduction)
        exact = hyvarinen_loss(s, point[None])[0]  # tr(grad s) + 1/2 ||s||^2 with the exact trace
        # an average of 20 000 iid estimates: its error is within 4 standard errors
        se = estimates.std() / math.sqrt(len(estimates))
        assert abs(estimates.mean() - exact) < 4 * se, (estimates.mean().item(), exact.item(), se.item())
    # more projections per example average them: n_projections=4 has a quarter of the variance (within 20 %)
    one = sliced_loss(s, x, generator=gen(20), variance_reduction=variance_reduction)
    four = sliced_loss(s, x, generator=gen(21), n_projections=4, variance_reduction=variance_reduction)
    assert abs(four.var() / one.var() - 0.25) < 0.05  # variance ratio from 20 000 draws: SE about 2 %


@pytest.mark.parametrize("make_model", [linear_score, mlp_score])
def test_dsm_minus_esm_on_noised_density_is_constant(make_model):
    """Thm. (thm-sm-dsm), Eq. (eq-sm-dsm): J_DSM(s) - J_F(s; q_sigma) = D/(2 sigma^2) - 1/2 E||grad log q_sigma||^2."""
    p, sigma = mixture(), 0.5
    x = p.sample(40_000, gen(10))
    eps = torch.randn(x.shape, generator=gen(11), dtype=x.dtype)
    x_tilde = x + sigma * eps  # an exact sample of the noised density q_sigma
    noised_score = lambda xt: p.noised_score(xt, 1.0, sigma)  # noqa: E731 (exact oracle)
    constant = 0.5 * (eps**2).sum(1) / sigma**2 - 0.5 * (noised_score(x_tilde) ** 2).sum(1)  # (B,), mean = C
    gaps = []
    for seed in (12, 13):
        s = make_model(seed)
        gap = dsm_loss(s, x, sigma, eps=eps) - fisher_divergence(s, noised_score, x_tilde)  # (B,)
        residual = gap - constant
        # Monte Carlo over 40 000 exact (x, eps) pairs: the mean residual is zero within 4 SE
        se = residual.std() / math.sqrt(len(residual))
        assert abs(residual.mean()) < 4 * se, (residual.mean().item(), se.item())
        gaps.append(gap)
    # model independence directly: the two models' gaps agree within 4 SE of their paired difference
    diff = gaps[0] - gaps[1]
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))
    # and the constant is large: DSM's minimum value is not zero
    assert constant.mean() > 1.0


def test_ncsn_loss_is_weighted_dsm():
    """Eq. (eq-sm-annealed): ncsn_loss picks levels uniformly; its mean is (1/L) sum_i sigma_i^2 J_DSM(sigma_i)."""
    p = mixture()
    # 1. wiring: with a one-level ladder, ncsn_loss is sigma^2 * dsm_loss on the same draws (level index, then eps)
    x = p.sample(64, gen(14))
    net = NoiseConditionalScore(2, hidden=16, n_hidden=1).double()
    ladder = ncsn_loss(net, x, [0.3], generator=gen(15))
    g = gen(15)
    torch.randint(1, (64,), generator=g)
    direct = 0.3**2 * dsm_loss(lambda xt: net(xt, 0.3), x, 0.3, generator=g)
    torch.testing.assert_close(ladder, direct)
    # the sigma scaling of the output: s(x, sigma) * sigma does not depend on how sigma is passed
    torch.testing.assert_close(net(x, 0.3) * 0.3, net(x, torch.full((64,), 0.3, dtype=torch.float64)) * 0.3)
    # 2. the level of each example is uniform over the ladder: record the sigmas the score is called with
    sigmas = torch.tensor([0.1, 0.3, 0.9, 2.7], dtype=torch.float64)
    A = torch.tensor([[-1.2, 0.4], [-0.3, -0.7]], dtype=torch.float64)  # a linear model s(x) = A x + b
    b = torch.tensor([0.2, -0.5], dtype=torch.float64)
    seen = []
    score = lambda xt, sigma: seen.append(sigma) or xt @ A.T + b  # noqa: E731
    n = 100_000
    x = p.sample(n, gen(16))
    losses = ncsn_loss(score, x, sigmas, generator=gen(17))
    counts = torch.stack([(seen[0] == sigma).sum() for sigma in sigmas]).double()
    assert counts.sum() == n
    statistic = ((counts - n / 4) ** 2 / (n / 4)).sum().item()  # Pearson's chi-square, 3 degrees of freedom
    assert statistic < chi2.ppf(1 - 1e-4, df=3), counts
    # 3. its expectation, in closed form: E 1/2 ||A (x + sigma eps) + b + eps / sigma||^2
    #    = 1/2 (tr(A C A^T) + ||A m + b||^2) + 1/2 ||sigma A + I / sigma||_F^2 (eps independent of x, mean 0),
    #    with m, C the mixture's exact mean and covariance; weighted by sigma^2 and averaged over the levels
    data_term = 0.5 * (torch.trace(A @ p.covariance() @ A.T) + (A @ p.mean() + b).pow(2).sum())
    eye = torch.eye(2, dtype=torch.float64)
    per_level = torch.stack([s**2 * (data_term + 0.5 * (s * A + eye / s).pow(2).sum()) for s in sigmas])
    exact = per_level.mean()
    se = losses.std() / math.sqrt(n)  # iid per example: level, x and eps drawn afresh
    assert abs(losses.mean() - exact) < 4 * se, (losses.mean().item(), exact.item(), se.item())
    # the levels' terms differ by far more than the tolerance: a wrong weight or level choice would show
    assert (per_level.max() - per_level.min()) > 100 * se


def test_exact_score_is_conservative():
    """Eq. (eq-sm-conservative): a gradient field has a symmetric Jacobian; a rotating field does not."""
    p = mixture()
    x = p.sample(100, gen(16))
    # float64 Hessian of log p: symmetric to rounding error
    assert jacobian_asymmetry(p.score, x).max() < 1e-10
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # a rotation: all curl, not a gradient
    torch.testing.assert_close(jacobian_asymmetry(lambda x: x @ R.T, x), torch.ones(100, dtype=torch.float64))
    # half gradient, half rotation: J = I + R has ||(J - J^T)/2|| / ||J|| = ||R|| / ||I + R|| = sqrt(2) / 2
    torch.testing.assert_close(jacobian_asymmetry(lambda x: x + x @ R.T, x),
                               torch.full((100,), math.sqrt(0.5), dtype=torch.float64))


def test_bad_input():
    """Eq. (eq-sm-fisher): wrong shapes, sigma <= 0, no projections and a bad ladder raise ValueError."""
    x = torch.randn(5, 2)
    s = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="same shape"):
        fisher_divergence(lambda x: x[:, :1], s, x)
    with pytest.raises(ValueError, match="same shape"):
        hyvarinen_loss(lambda x: x.sum(1), x)
    with pytest.raises(ValueError, match="floating-point batch"):
        hyvarinen_loss(s, torch.randn(5))
    with pytest.raises(ValueError, match="floating-point batch"):
        dsm_loss(s, torch.ones(5, 2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        dsm_loss(s, x, 0.0)
    with pytest.raises(ValueError, match="sigma must be a float or have shape"):
        dsm_loss(s, x, torch.ones(3))
    with pytest.raises(ValueError, match=r"eps and x must have the same shape, got eps \(5, 3\) and x \(5, 2\)"):
        dsm_loss(s, x, 0.1, eps=torch.randn(5, 3))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_loss(s, x, n_projections=0)
    with pytest.raises(ValueError, match="non-empty"):
        ncsn_loss(lambda x, sigma: x, x, [])
    with pytest.raises(ValueError, match="strictly increasing"):
        ncsn_loss(lambda x, sigma: x, x, [1.0, 0.5])


def test_score_shape_must_match_x():
    """Eq. (eq-sm-fisher): every loss taking a score rejects one whose output shape differs from x, naming both."""
    x = torch.randn(5, 2, dtype=torch.float64)
    for bad, shape in ((lambda x: x[:, :1], r"\(5, 1\)"), (lambda x: x.sum(1), r"\(5,\)"),
                       (lambda x: x[:1], r"\(1, 2\)")):  # each would broadcast against (5, 2) silently
        for loss in (lambda s: fisher_divergence(s, lambda x: -x, x), lambda s: hyvarinen_loss(s, x),
                     lambda s: sliced_loss(s, x), lambda s: jacobian_asymmetry(s, x)):
            with pytest.raises(ValueError, match=rf"score\(x\) and x must have the same shape, got score\(x\) "
                                                 rf"{shape} and x \(5, 2\)"):
                loss(bad)
        with pytest.raises(ValueError, match=rf"true_score\(x\) and x .* got true_score\(x\) {shape} and x"):
            fisher_divergence(lambda x: -x, bad, x)
        with pytest.raises(ValueError, match=rf"score\(x_tilde\) and x_tilde .* {shape} and x_tilde \(5, 2\)"):
            dsm_loss(bad, x, 0.1)
        with pytest.raises(ValueError, match=rf"score\(x_tilde, sigma\) and x_tilde .* {shape} and x_tilde \(5, 2\)"):
            ncsn_loss(lambda x, sigma, bad=bad: bad(x), x, [0.1, 1.0])


def quadratic_log_density():
    """log f(x) = -1/2 (x - mu)^T P (x - mu), P = L L^T + I/2, with trainable mu and L; its score is -P (x - mu)."""
    mu = torch.tensor([0.3, -0.4], dtype=torch.float64, requires_grad=True)
    L = torch.tensor([[0.9, 0.0], [0.5, 0.7]], dtype=torch.float64, requires_grad=True)
    precision = lambda: L @ L.T + 0.5 * torch.eye(2, dtype=torch.float64)  # noqa: E731
    log_f = lambda x: -0.5 * ((x - mu) @ precision() * (x - mu)).sum(1)  # noqa: E731
    return log_f, precision, mu, L


def test_score_from_log_density_is_differentiable():
    """Eq. (eq-sm-z-drops-out), Eq. (eq-sm-hyvarinen), Eq. (eq-sm-dsm): the autograd score trains log f's parameters."""
    log_f, precision, mu, L = quadratic_log_density()
    x = torch.randn(300, 2, generator=gen(30), dtype=torch.float64)
    eps = torch.randn(300, 2, generator=gen(31), dtype=torch.float64)
    sigma = 0.4
    score = score_from_log_density(log_f)
    # oracle: the closed-form score -P (x - mu), its Jacobian trace -tr(P), and autograd of those formulas
    hyvarinen_exact = lambda: -torch.trace(precision()) + 0.5 * ((x - mu) @ precision()).pow(2).sum(1)  # noqa: E731
    x_tilde = x + sigma * eps
    dsm_exact = lambda: 0.5 * (-(x_tilde - mu) @ precision() + eps / sigma).pow(2).sum(1)  # noqa: E731
    for loss, exact in ((lambda: hyvarinen_loss(score, x), hyvarinen_exact),
                        (lambda: dsm_loss(score, x, sigma, eps=eps), dsm_exact),
                        (lambda: sliced_loss(score, x, generator=gen(32)), None)):
        value = loss()
        grads = torch.autograd.grad(value.mean(), (mu, L))
        assert all(g.abs().max() > 1e-3 for g in grads)  # the gradient reaches both parameters
        if exact is not None:
            torch.testing.assert_close(value, exact())
            for g, g_exact in zip(grads, torch.autograd.grad(exact().mean(), (mu, L))):
                torch.testing.assert_close(g, g_exact)
    # under torch.no_grad (a sampler) the score is a plain tensor: no graph is built
    with torch.no_grad():
        s = score(x)
    assert not s.requires_grad
    torch.testing.assert_close(s, -(x - mu.detach()) @ precision().detach())
