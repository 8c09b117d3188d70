"""dgm.variational: the ELBO on the exact linear-Gaussian model, the diagonal Gaussian KL, the two gradient
estimators and the Gumbel tricks, checked against torch.distributions, closed forms and Monte Carlo."""
import math

import pytest
import torch
from conftest import gen
from scipy import integrate
from scipy.stats import chisquare
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from dgm.variational import LinearGaussian, gaussian_kl, gumbel_max, gumbel_softmax, reparam_grad, score_function_grad

D, K = 5, 3


def linear_gaussian(seed=0, orthogonal=False, dim=D, k=K):
    """A random float64 linear-Gaussian model; orthogonal=True gives W orthogonal columns (diagonal posterior)."""
    g = gen(seed)
    W = torch.randn(dim, k, generator=g, dtype=torch.float64)
    if orthogonal:
        W = torch.linalg.qr(W).Q * torch.tensor([2.0, 1.0, 0.5][:k], dtype=torch.float64)
    b = torch.randn(dim, generator=g, dtype=torch.float64)
    return LinearGaussian(W, b, s=0.7)


def random_q(n, seed, k=K):
    """n random diagonal Gaussians q(z) = N(mean, diag e^log_var), float64."""
    g = gen(seed)
    mean = torch.randn(n, k, generator=g, dtype=torch.float64)
    return mean, 0.5 * torch.randn(n, k, generator=g, dtype=torch.float64)


def test_elbo_plus_gap_equals_evidence():
    """Eq. (eq-vi-elbo-gap): ELBO(q) + KL(q || p(z | x)) == log p(x) for any q, on the linear-Gaussian model.

    Oracles: log p(x) from torch's MultivariateNormal N(b, W W^T + s^2 I) (eq-vi-linear-gaussian), the posterior
    by Gaussian conditioning of the joint (z, x) in the D x D form, the KL from torch.distributions; the
    Monte Carlo ELBO agrees with the closed form within 4 SE."""
    model = linear_gaussian()
    x, _ = model.sample(6, gen(1))
    # the evidence and the posterior against independent formulas
    cov_x = model.W @ model.W.T + model.s**2 * torch.eye(D, dtype=torch.float64)
    log_px = MultivariateNormal(model.b, cov_x).log_prob(x)
    torch.testing.assert_close(model.log_evidence(x), log_px)  # float64: agreement to ~1e-7 relative (default)
    gain = torch.linalg.solve(cov_x, model.W).T  # (k, D): Cov(z, x) Cov(x)^{-1}
    post_mean, post_cov = model.posterior(x)
    torch.testing.assert_close(post_mean, (x - model.b) @ gain.T)
    torch.testing.assert_close(post_cov, torch.eye(K, dtype=torch.float64) - gain @ model.W)
    # ELBO + KL(q || posterior) == log p(x), to float64 precision
    q_mean, q_log_var = random_q(6, 2)
    q = MultivariateNormal(q_mean, torch.diag_embed(q_log_var.exp()))
    gap = kl_divergence(q, MultivariateNormal(post_mean, post_cov))
    elbo = model.elbo(x, q_mean, q_log_var)
    torch.testing.assert_close(elbo + gap, log_px, rtol=0, atol=1e-9)  # both sides are closed forms
    assert torch.all(gap > 0.01)  # a random q is far from the posterior: the check is not 0 == 0
    # the Monte Carlo ELBO (mean of log p(x, z) - log q(z)) agrees with the closed form within 4 SE
    draws = model.elbo_mc(x, q_mean, q_log_var, 20_000, gen(3))  # (S, B)
    se = draws.std(0) / len(draws) ** 0.5
    assert torch.all((draws.mean(0) - elbo).abs() < 4 * se), (draws.mean(0) - elbo) / se


def test_elbo_is_a_lower_bound():
    """Eq. (eq-vi-elbo-jensen): ELBO(q) <= log p(x) for 500 random q; the exact posterior (diagonal when W has
    orthogonal columns) gives equality, every one of its Monte Carlo draws already equals log p(x), and maximising
    the ELBO over q by L-BFGS lands on the posterior."""
    model = linear_gaussian()
    x, _ = model.sample(1, gen(4))
    q_mean, q_log_var = random_q(500, 5)
    elbo = model.elbo(x.expand(500, -1), q_mean, q_log_var)
    assert torch.all(elbo < model.log_evidence(x))  # strict: a diagonal q never equals this full-covariance posterior
    # orthogonal columns: W^T W is diagonal, so the posterior covariance is diagonal and q can match it
    model = linear_gaussian(orthogonal=True)
    x, _ = model.sample(4, gen(6))
    mean, cov = model.posterior(x)
    torch.testing.assert_close(cov, torch.diag(torch.diagonal(cov)), rtol=0, atol=1e-12)  # diagonal up to rounding
    log_var = torch.diagonal(cov).log().expand(4, -1)
    torch.testing.assert_close(model.elbo(x, mean, log_var), model.log_evidence(x), rtol=0, atol=1e-9)
    draws = model.elbo_mc(x, mean, log_var, 50, gen(7))  # (S, B): log p(x, z) - log p(z | x) = log p(x) for every z
    torch.testing.assert_close(draws, model.log_evidence(x).expand(50, -1), rtol=0, atol=1e-9)
    # maximising the ELBO over q (L-BFGS from q = N(0, I)) finds the posterior, and the bound becomes tight
    q_m = torch.zeros(4, K, dtype=torch.float64, requires_grad=True)
    q_lv = torch.zeros(4, K, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([q_m, q_lv], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimizer.zero_grad()
        loss = -model.elbo(x, q_m, q_lv).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    torch.testing.assert_close(q_m.detach(), mean, rtol=0, atol=1e-6)  # 1e-6: the optimiser's tolerance, not rounding
    torch.testing.assert_close(q_lv.detach(), log_var, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.elbo(x, q_m, q_lv).detach(), model.log_evidence(x), rtol=0, atol=1e-9)


def test_gaussian_kl_matches_torch():
    """Eq. (eq-vi-gauss-kl): the diagonal Gaussian KL against torch.distributions.kl_divergence, per example,
    for two general Gaussians, against the standard normal prior (the default), and with a broadcast (k,) second
    argument."""
    g = gen(8)
    mu1, lv1, mu2, lv2 = (torch.randn(7, 4, generator=g, dtype=torch.float64) for _ in range(4))

    def oracle(m1, l1, m2, l2):
        return kl_divergence(Independent(Normal(m1, (0.5 * l1).exp()), 1), Independent(Normal(m2, (0.5 * l2).exp()), 1))

    torch.testing.assert_close(gaussian_kl(mu1, lv1, mu2, lv2), oracle(mu1, lv1, mu2, lv2))
    zeros = torch.zeros_like(mu1)
    torch.testing.assert_close(gaussian_kl(mu1, lv1), oracle(mu1, lv1, zeros, zeros))
    torch.testing.assert_close(gaussian_kl(mu1, lv1, mu2[0], lv2[0]), oracle(mu1, lv1, mu2[:1], lv2[:1]))
    assert gaussian_kl(mu1, lv1).shape == (7,)
    torch.testing.assert_close(gaussian_kl(mu1, lv1, mu1, lv1), torch.zeros(7, dtype=torch.float64))


def expected_f(mean, log_var, c):
    """E[f(z)] in closed form for f(z) = sum_j c_j sin(z_j) + z_j^2, z ~ N(mean, diag e^log_var)."""
    var = log_var.exp()
    return (c * torch.sin(mean) * torch.exp(-var / 2) + mean**2 + var).sum()


def test_gradient_estimators_are_unbiased():
    """Eq. (eq-vi-score-function), Eq. (eq-vi-reparam): both estimators of grad_{mean, log_var} E_q[f(z)] average to the
    exact gradient (autograd of the closed-form expectation of f(z) = sum_j c_j sin z_j + z_j^2) within 4 SE."""
    c = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)
    mean = torch.tensor([0.3, -1.0, 1.2], dtype=torch.float64, requires_grad=True)
    log_var = torch.tensor([-0.5, 0.2, 0.0], dtype=torch.float64, requires_grad=True)
    exact = torch.autograd.grad(expected_f(mean, log_var, c), (mean, log_var))

    def f(z):
        return (c * torch.sin(z) + z**2).sum(-1)  # (S, k) -> (S,)

    n = 40_000
    for name, estimator in [("score function", score_function_grad), ("reparameterisation", reparam_grad)]:
        estimates = estimator(f, mean, log_var, n, gen(9))  # (S, k) for the mean and for the log-variance
        for est, true in zip(estimates, exact):
            assert est.shape == (n, 3)
            se = est.std(0) / n**0.5  # 4 SE: a false alarm has probability ~6e-5 per coordinate
            assert torch.all((est.mean(0) - true).abs() < 4 * se), (name, (est.mean(0) - true) / se)


def test_gradient_variance_closed_form():
    """Eq. (eq-vi-score-function), Eq. (eq-vi-reparam): for f(z) = z^2, z ~ N(mu, s^2), the per-draw variances are
    closed forms: mean gradient, reparameterised 4 s^2, score function mu^4 / s^2 + 14 mu^2 + 15 s^2; log-variance
    gradient, reparameterised mu^2 s^2 + 2 s^4, score function mu^4 / 2 + 15 mu^2 s^2 + 18.5 s^4. Same mean, very
    different variance.

    The sample variances match within 4 SE (the SE of a variance estimated from the draws of (g - mean)^2)."""
    mu, s = 2.0, 0.8
    mean, log_var = torch.tensor([mu], dtype=torch.float64), torch.tensor([2 * math.log(s)], dtype=torch.float64)
    closed = {"reparam": (4 * s**2, mu**2 * s**2 + 2 * s**4),
              "score": (mu**4 / s**2 + 14 * mu**2 + 15 * s**2, mu**4 / 2 + 15 * mu**2 * s**2 + 18.5 * s**4)}
    n = 200_000

    def f(z):
        return (z**2).sum(-1)

    for name, estimator in [("reparam", reparam_grad), ("score", score_function_grad)]:
        for g, var in zip(estimator(f, mean, log_var, n, gen(10)), closed[name]):
            sq = (g[:, 0] - g[:, 0].mean()) ** 2  # (S,): its mean is the sample variance
            se = sq.std() / n**0.5
            assert abs(sq.mean() - var) < 4 * se, (name, sq.mean().item(), var, se.item())
    assert closed["score"][0] > 10 * closed["reparam"][0]  # the point of the closed forms


def test_gumbel_max_is_exact():
    """Thm. (thm-vi-gumbel-max): argmax_k (logits_k + G_k) is distributed as softmax(logits); chi-square test of
    60 000 draws for each of three rows of (unnormalised) logits, p-value > 0.001 (seeded, so not flaky)."""
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5, 3.0],
                           [5.0, 5.0, 5.0, 5.0, 5.0, 5.0],  # uniform, shifted: the argmax ignores a constant
                           [-2.0, 0.0, 0.1, 1.5, -0.3, 0.7]], dtype=torch.float64)
    n = 60_000
    samples = gumbel_max(logits.expand(n, -1, -1), gen(11))  # (n, 3)
    assert samples.shape == (n, 3) and samples.dtype == torch.int64
    probs = torch.softmax(logits, -1)
    for row in range(3):
        counts = torch.bincount(samples[:, row], minlength=6).double()
        p_value = chisquare(counts.numpy(), (n * probs[row]).numpy()).pvalue
        assert p_value > 1e-3, (row, p_value, counts / n, probs[row])


def test_gumbel_softmax_limits():
    """Eq. (eq-vi-gumbel-softmax): samples lie on the simplex; their argmax is the Gumbel-max sample drawn with the same
    noise; as the temperature tau -> 0 they tend to its one-hot (off-argmax mass <= (K-1) e^{-gap/tau}, gap = the
    top-two margin of logits + G), and as tau grows to the uniform vector (|log(K y_k)| <= range(logits + G) / tau)."""
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5], dtype=torch.float64).expand(2000, -1)
    k = logits.shape[-1]
    one_hot = torch.nn.functional.one_hot(gumbel_max(logits, gen(12)), k).double()
    v = logits + -torch.log(-torch.log(torch.rand(logits.shape, generator=gen(12), dtype=torch.float64)))  # same G
    top2 = v.topk(2, dim=-1).values
    gap, spread = top2[:, 0] - top2[:, 1], v.max(-1).values - v.min(-1).values  # (n,)
    for tau in (1e-3, 0.01, 0.1, 1.0, 10.0, 100.0):
        y = gumbel_softmax(logits, tau, gen(12))  # the same noise as the one-hot above
        assert torch.all(y >= 0)
        torch.testing.assert_close(y.sum(-1), torch.ones(len(y), dtype=torch.float64))
        assert torch.equal(y.argmax(-1), one_hot.argmax(-1))
        off_mass = (y - one_hot).abs().sum(-1) / 2  # = 1 - y[argmax]
        assert torch.all(off_mass <= (k - 1) * torch.exp(-gap / tau) + 1e-12)  # 1e-12: float64 rounding
        if tau >= 0.1:  # below, y can underflow to 0 in float64 (e^{-spread / tau} < 1e-308) and log(K y) = -inf
            assert torch.all(torch.log(k * y).abs() <= spread[:, None] / tau + 1e-9)  # 1e-9: rounding of log
    assert (gumbel_softmax(logits, 1e-3, gen(12)) - one_hot).abs().mean() < 1e-3
    assert (gumbel_softmax(logits, 100.0, gen(12)) - 1 / k).abs().max() < 0.05


def test_binary_concrete_mean_is_biased():
    """Exercise (ex-vi-binary-concrete), Eq. (eq-vi-gumbel-softmax) with K = 2 categories, Delta = l_1 - l_2 = 1.5:
    rounding the relaxed sample is exact at every temperature, P(y_1 > 1/2) = pi_1 = sigmoid(Delta) within 4 binomial
    SE; but the mean of y_1 is E[sigmoid((Delta + L) / tau)] with L logistic (SciPy quadrature), which the Monte Carlo
    mean of 100 000 draws matches within 4 SE, which differs from pi_1 by more than 20 SE, and which tends to 1/2 as
    tau grows."""
    logits = torch.tensor([1.0, -0.5], dtype=torch.float64)
    delta, n = (logits[0] - logits[1]).item(), 100_000
    pi1 = 1 / (1 + math.exp(-delta))

    def sigmoid(u):
        return 0.5 * (1 + math.tanh(u / 2))  # no overflow for large |u|

    def mean_y1(tau):  # E[y_1] = int sigmoid((Delta + t) / tau) p_L(t) dt, p_L(t) = sigmoid(t) sigmoid(-t)
        return integrate.quad(lambda t: sigmoid((delta + t) / tau) * sigmoid(t) * sigmoid(-t), -60, 60,
                              epsabs=1e-12)[0]

    exact = {}
    for j, tau in enumerate((0.5, 1.0, 2.0, 5.0)):
        y1 = gumbel_softmax(logits.expand(n, -1), tau, gen(40 + j))[:, 0]  # (n,)
        exact[tau] = mean_y1(tau)
        se = (y1.std() / n**0.5).item()
        assert abs(y1.mean().item() - exact[tau]) < 4 * se, (tau, y1.mean().item(), exact[tau], se)
        assert abs(exact[tau] - pi1) > 20 * se  # biased: the relaxed mean is not the category probability
        frequency = (y1 > 0.5).double().mean().item()
        assert abs(frequency - pi1) < 4 * math.sqrt(pi1 * (1 - pi1) / n)  # rounding: an exact Bernoulli(pi_1)
    gaps = [abs(exact[tau] - 0.5) for tau in sorted(exact)]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])) and abs(mean_y1(1e3) - 0.5) < 1e-3


def test_bad_input():
    """The chapter's user errors raise ValueError naming the expected and the given value: K < 1 samples,
    a temperature <= 0, mismatched latent sizes, no categories."""
    model = linear_gaussian()
    x, _ = model.sample(3, gen(13))
    q_mean, q_log_var = random_q(3, 14)
    with pytest.raises(ValueError, match=r"K must be a positive int, got 0"):
        model.elbo_mc(x, q_mean, q_log_var, 0)
    for estimator in (score_function_grad, reparam_grad):
        with pytest.raises(ValueError, match=r"K must be a positive int, got 0"):
            estimator(lambda z: z.sum(-1), q_mean[0], q_log_var[0], 0)
    with pytest.raises(ValueError, match=r"mismatched latent sizes: the model has k=3 latents, .* \(3, 4\)"):
        model.elbo(x, *random_q(3, 15, k=4))
    with pytest.raises(ValueError, match=r"q_mean and q_log_var must have the same shape, got q_mean \(3, 3\) and "
                                         r"q_log_var \(3, 2\)"):
        model.elbo(x, q_mean, q_log_var[:, :2])
    with pytest.raises(ValueError, match=r"mu1 and logvar1 must have the same shape, got mu1 \(3, 3\) and logvar1 "
                                         r"\(3, 2\)"):
        gaussian_kl(q_mean, q_log_var[:, :2])
    with pytest.raises(ValueError, match=r"mismatched latent sizes: mu1 has shape \(3, 3\), mu2 \(3, 2\)"):
        gaussian_kl(q_mean, q_log_var, q_mean[:, :2], q_log_var[:, :2])
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\), got \(3, 4\)"):
        model.log_evidence(x[:, :4])
    for tau in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got"):
            gumbel_softmax(torch.zeros(4), tau)
    with pytest.raises(ValueError, match=r"K >= 1 categories, got \(2, 0\)"):
        gumbel_max(torch.zeros(2, 0))
    with pytest.raises(ValueError, match=r"s must be finite and > 0"):
        LinearGaussian(model.W, model.b, s=0.0)
