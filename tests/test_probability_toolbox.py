"""Numerical checks of Appendix B (book/B_probability_toolbox.md): the probability toolbox.

Each test re-derives one result of the appendix through an independent route: torch.distributions,
autograd, numerical quadrature, or Monte Carlo with a tolerance set by its standard error (SE).
Monte Carlo checks use "within 4 SE": a correct formula fails with probability about 6e-5 per
comparison (two-sided normal tail), while the sample sizes make every tested error many SE wide.
"""
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

DT = torch.float64
FOUR_SE = 4.0  # two-sided false-alarm probability 2 * (1 - Phi(4)) ~ 6.3e-5 per comparison


# -- helpers: the appendix's formulas, written out as in the text ---------------------------------
def random_spd(d, gen, jitter=0.2):
    """A random symmetric positive-definite (d, d) matrix A A^T + jitter I."""
    a = torch.randn(d, d, generator=gen, dtype=DT)
    return a @ a.T + jitter * torch.eye(d, dtype=DT)


def gaussian_kl(mu0, cov0, mu1, cov1):
    """Eq. (eq-prob-gauss-kl): KL(N(mu0, cov0) || N(mu1, cov1)) in nats."""
    d = mu0.shape[-1]
    cov1_inv = torch.linalg.inv(cov1)
    diff = mu1 - mu0
    trace = torch.trace(cov1_inv @ cov0)
    mahalanobis = diff @ cov1_inv @ diff
    log_det_ratio = torch.logdet(cov1) - torch.logdet(cov0)
    return 0.5 * (trace + mahalanobis - d + log_det_ratio)


def kl_univariate(m0, s0, m1, s1):
    """Eq. (eq-prob-kl-univariate): KL(N(m0, s0^2) || N(m1, s1^2))."""
    return torch.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5


def kl_diagonal(m0, s0, m1, s1):
    """Eq. (eq-prob-kl-diagonal): the sum of univariate KLs over coordinates."""
    return kl_univariate(m0, s0, m1, s1).sum(-1)


def kl_to_standard_normal(m, s):
    """Eq. (eq-prob-kl-std-normal): KL(N(m, diag s^2) || N(0, I)), the VAE prior-matching term."""
    return 0.5 * (m**2 + s**2 - 1 - torch.log(s**2)).sum(-1)


def mixture_1d():
    """A lopsided three-component 1-D mixture prior p_0 = sum_k pi_k N(mu_k, s_k^2)."""
    pi = torch.tensor([0.2, 0.5, 0.3], dtype=DT)
    mu = torch.tensor([-2.0, 0.5, 3.0], dtype=DT)
    s = torch.tensor([0.3, 0.8, 0.5], dtype=DT)
    return pi, mu, s


def normal_pdf(x, mean, std):
    """N(x; mean, std^2) for numpy scalars or arrays (used inside scipy quadrature)."""
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def noised_mixture_log_prob(x, pi, mu, s, alpha, sigma):
    """Eq. (eq-prob-noised-mixture): log p_t(x) = log sum_k pi_k N(x; alpha mu_k, alpha^2 s_k^2 + sigma^2)."""
    std_t = torch.sqrt(alpha**2 * s**2 + sigma**2)  # (K,)
    log_comp = Normal(alpha * mu, std_t).log_prob(x[..., None])  # (B, K)
    return torch.logsumexp(torch.log(pi) + log_comp, dim=-1)  # (B,)


# (alpha, sigma) pairs from nearly clean to nearly pure noise, as along a diffusion schedule
NOISE_LEVELS = [(0.99, 0.1), (0.8, 0.6), (0.3, 0.95)]


# -- Section 2: Gaussian identities -----------------------------------------------------------------
def test_affine_map_of_gaussian():
    """Thm. (thm-prob-affine): A x + b ~ N(A mu + b, A Sigma A^T), checked for an invertible A by the
    linear change of variables (eq-prob-linear-change) with torch.distributions densities, and for a
    wide (2, 4) matrix A by Monte Carlo moments and the moment generating function (eq-prob-gauss-mgf)."""
    gen = torch.Generator().manual_seed(0)
    d = 4
    mu, cov = torch.randn(d, generator=gen, dtype=DT), random_spd(d, gen)
    a, b = torch.randn(d, d, generator=gen, dtype=DT), torch.randn(d, generator=gen, dtype=DT)
    y = torch.randn(50, d, generator=gen, dtype=DT) * 3  # (50, D) test points
    # change of variables: p_Y(y) = p_X(A^{-1}(y - b)) / |det A|; an exact identity, so round-off only
    x = torch.linalg.solve(a, (y - b).T).T
    lhs = MultivariateNormal(mu, cov).log_prob(x) - torch.linalg.slogdet(a)[1]
    rhs = MultivariateNormal(a @ mu + b, a @ cov @ a.T).log_prob(y)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)

    # a non-square map: mean, covariance and MGF E[exp(t^T y)] by Monte Carlo, within 4 SE each
    n = 100_000
    a2, b2 = torch.randn(2, d, generator=gen, dtype=DT), torch.randn(2, dtype=DT, generator=gen)
    chol = torch.linalg.cholesky(cov)
    xs = mu + torch.randn(n, d, generator=gen, dtype=DT) @ chol.T  # (n, D), reparameterised draws
    ys = xs @ a2.T + b2  # (n, 2)
    mean_y, cov_y = a2 @ mu + b2, a2 @ cov @ a2.T
    se = ys.std(0) / math.sqrt(n)
    assert torch.all((ys.mean(0) - mean_y).abs() < FOUR_SE * se)
    prods = (ys - mean_y)[:, :, None] * (ys - mean_y)[:, None, :]  # (n, 2, 2), centred at the true mean
    assert torch.all((prods.mean(0) - cov_y).abs() < FOUR_SE * prods.std(0) / math.sqrt(n))
    for t in torch.tensor([[0.1, -0.05], [0.0, 0.08], [-0.07, 0.02]], dtype=DT):
        w = torch.exp(ys @ t)  # (n,)
        mgf = torch.exp(t @ mean_y + 0.5 * t @ cov_y @ t)
        assert abs(w.mean() - mgf) < FOUR_SE * w.std() / math.sqrt(n)


def test_sum_of_independent_gaussians():
    """Eq. (eq-prob-noised-gaussian): for x_0 ~ N(m, S) and independent eps ~ N(0, I),
    x_t = alpha x_0 + sigma eps has mean alpha m and covariance alpha^2 S + sigma^2 I; Monte Carlo
    mean and covariance entries within 4 SE, at three noise levels."""
    gen = torch.Generator().manual_seed(1)
    d, n = 3, 200_000
    m, s = torch.randn(d, generator=gen, dtype=DT), random_spd(d, gen)
    chol = torch.linalg.cholesky(s)
    for alpha, sigma in NOISE_LEVELS:
        x0 = m + torch.randn(n, d, generator=gen, dtype=DT) @ chol.T  # (n, D)
        eps = torch.randn(n, d, generator=gen, dtype=DT)
        xt = alpha * x0 + sigma * eps
        mean_t = alpha * m
        cov_t = alpha**2 * s + sigma**2 * torch.eye(d, dtype=DT)
        assert torch.all((xt.mean(0) - mean_t).abs() < FOUR_SE * xt.std(0) / math.sqrt(n))
        prods = (xt - mean_t)[:, :, None] * (xt - mean_t)[:, None, :]  # (n, D, D)
        assert torch.all((prods.mean(0) - cov_t).abs() < FOUR_SE * prods.std(0) / math.sqrt(n))
        # the check can fail: adding amplitudes instead of variances (alpha S + sigma I) is many SE off
        wrong = alpha * s + sigma * torch.eye(d, dtype=DT)
        assert torch.any((prods.mean(0) - wrong).abs() > FOUR_SE * prods.std(0) / math.sqrt(n))


def test_completing_the_square():
    """Eq. (eq-prob-gauss-integral): int exp(-x^T A x / 2 + b^T x) dx = (2 pi)^{D/2} det(A)^{-1/2}
    exp(b^T A^{-1} b / 2), in D = 2 by scipy's adaptive 2-D quadrature."""
    gen = torch.Generator().manual_seed(2)
    a = random_spd(2, gen, jitter=0.5).numpy()
    b = torch.randn(2, generator=gen, dtype=DT).numpy()
    centre = np.linalg.solve(a, b)  # the completed square is centred at A^{-1} b
    f = lambda y, x: np.exp(-0.5 * np.array([x, y]) @ a @ np.array([x, y]) + b @ np.array([x, y]))  # noqa: E731
    width = 12 / math.sqrt(np.linalg.eigvalsh(a).min())  # 12 standard deviations along the widest axis
    numeric, _ = integrate.dblquad(f, centre[0] - width, centre[0] + width, centre[1] - width, centre[1] + width,
                                   epsabs=0, epsrel=1e-10)
    closed = 2 * math.pi / math.sqrt(np.linalg.det(a)) * math.exp(0.5 * b @ np.linalg.solve(a, b))
    assert numeric == pytest.approx(closed, rel=1e-7)  # quadrature converges to ~1e-10; 1e-7 is slack


def test_gaussian_conditioning():
    """Thm. (thm-prob-gauss-conditioning): the Schur-complement conditional N(mu_{1|2}, Sigma_{1|2})
    equals (a) the precision-block form (eq-prob-cond-precision) and (b) the density ratio
    p(x_1, x_2) / p(x_2) evaluated with torch.distributions at random points (x_1, x_2)."""
    gen = torch.Generator().manual_seed(3)
    d1, d2 = 2, 3
    mu, cov = torch.randn(d1 + d2, generator=gen, dtype=DT), random_spd(d1 + d2, gen)
    mu1, mu2 = mu[:d1], mu[d1:]
    s11, s12, s22 = cov[:d1, :d1], cov[:d1, d1:], cov[d1:, d1:]
    gain = s12 @ torch.linalg.inv(s22)  # Sigma_12 Sigma_22^{-1}, (d1, d2)
    cov_cond = s11 - gain @ s12.T  # Schur complement of Sigma_22
    # (a) precision blocks: Sigma_{1|2} = Lambda_11^{-1}, mean = mu_1 - Lambda_11^{-1} Lambda_12 (x_2 - mu_2)
    prec = torch.linalg.inv(cov)
    l11_inv = torch.linalg.inv(prec[:d1, :d1])
    torch.testing.assert_close(cov_cond, l11_inv, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gain, -l11_inv @ prec[:d1, d1:], rtol=1e-10, atol=1e-12)
    # (b) density ratio: log p(x1, x2) - log p(x2) = log N(x1; mu_{1|2}(x2), Sigma_{1|2}) at 200 points
    x = mu + 2 * torch.randn(200, d1 + d2, generator=gen, dtype=DT)  # (200, D)
    x1, x2 = x[:, :d1], x[:, d1:]
    mean_cond = mu1 + (x2 - mu2) @ gain.T  # (200, d1)
    log_ratio = MultivariateNormal(mu, cov).log_prob(x) - MultivariateNormal(mu2, s22).log_prob(x2)
    torch.testing.assert_close(log_ratio, MultivariateNormal(mean_cond, cov_cond).log_prob(x1),
                               rtol=1e-10, atol=1e-10)  # exact identities: round-off only


def test_product_of_gaussian_densities():
    """Thm. (thm-prob-product): N(x; a, A) N(x; b, B) = N(a; b, A + B) N(x; c, C) with
    C = (A^{-1} + B^{-1})^{-1}, c = C (A^{-1} a + B^{-1} b); pointwise with torch.distributions."""
    gen = torch.Generator().manual_seed(4)
    d = 3
    a, b = torch.randn(d, generator=gen, dtype=DT), torch.randn(d, generator=gen, dtype=DT)
    cov_a, cov_b = random_spd(d, gen), random_spd(d, gen)
    prec_a, prec_b = torch.linalg.inv(cov_a), torch.linalg.inv(cov_b)
    cov_c = torch.linalg.inv(prec_a + prec_b)
    c = cov_c @ (prec_a @ a + prec_b @ b)
    x = torch.randn(100, d, generator=gen, dtype=DT) * 2
    lhs = MultivariateNormal(a, cov_a).log_prob(x) + MultivariateNormal(b, cov_b).log_prob(x)
    rhs = MultivariateNormal(b, cov_a + cov_b).log_prob(a) + MultivariateNormal(c, cov_c).log_prob(x)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_reparameterisation():
    """Eq. (eq-prob-reparam): mu + L eps with L L^T = Sigma has the law N(mu, Sigma); the pushforward
    density of the affine map (via eq-prob-linear-change) equals torch's N(mu, Sigma), and the
    pathwise gradient d/dmu E[|x|^2] = 2 mu by Monte Carlo within 4 SE."""
    gen = torch.Generator().manual_seed(5)
    d = 3
    mu, cov = torch.randn(d, generator=gen, dtype=DT), random_spd(d, gen)
    chol = torch.linalg.cholesky(cov)
    x = torch.randn(64, d, generator=gen, dtype=DT) * 2
    eps = torch.linalg.solve_triangular(chol, (x - mu).T, upper=False).T  # invert x = mu + L eps
    pushforward = Normal(torch.zeros((), dtype=DT), 1.0).log_prob(eps).sum(-1) - torch.log(torch.diagonal(chol)).sum()
    torch.testing.assert_close(pushforward, MultivariateNormal(mu, cov).log_prob(x), rtol=1e-10, atol=1e-10)
    # pathwise gradient: E[|mu + L eps|^2] = |mu|^2 + tr(Sigma), so its gradient in mu is 2 mu
    n = 100_000
    mu_p = mu.clone().requires_grad_(True)
    eps = torch.randn(n, d, generator=gen, dtype=DT)
    xs = mu_p + eps @ chol.T  # (n, D): the sample is a differentiable function of mu
    (grad,) = torch.autograd.grad((xs**2).sum(-1).mean(), mu_p)  # Monte Carlo pathwise gradient
    se = (2 * xs.detach()).std(0) / math.sqrt(n)  # per-sample gradients are 2 x_i
    assert torch.all((grad - 2 * mu).abs() < FOUR_SE * se)


def test_gaussian_entropy():
    """Eq. (eq-prob-gauss-entropy): H = (1/2) log det(2 pi e Sigma) equals torch.distributions'
    entropy and the Monte Carlo estimate E[-log p(x)] (within 4 SE), in D = 1, 2, 5."""
    gen = torch.Generator().manual_seed(6)
    n = 100_000
    for d in (1, 2, 5):
        mu, cov = torch.randn(d, generator=gen, dtype=DT), random_spd(d, gen)
        closed = 0.5 * torch.logdet(2 * math.pi * math.e * cov)
        dist = MultivariateNormal(mu, cov)
        torch.testing.assert_close(closed, dist.entropy(), rtol=1e-12, atol=1e-12)
        x = mu + torch.randn(n, d, generator=gen, dtype=DT) @ torch.linalg.cholesky(cov).T
        neg_log_p = -dist.log_prob(x)  # (n,)
        assert abs(neg_log_p.mean() - closed) < FOUR_SE * neg_log_p.std() / math.sqrt(n)


def test_gaussian_second_moments():
    """Lemma (lem-prob-moments): E[x x^T] = Sigma + mu mu^T and
    E[(x - m)^T M (x - m)] = tr(M Sigma) + (mu - m)^T M (mu - m), by Monte Carlo within 4 SE."""
    gen = torch.Generator().manual_seed(7)
    d, n = 3, 200_000
    mu, cov = torch.randn(d, generator=gen, dtype=DT), random_spd(d, gen)
    m, mat = torch.randn(d, generator=gen, dtype=DT), torch.randn(d, d, generator=gen, dtype=DT)
    x = mu + torch.randn(n, d, generator=gen, dtype=DT) @ torch.linalg.cholesky(cov).T
    outer = x[:, :, None] * x[:, None, :]  # (n, D, D)
    se = outer.std(0) / math.sqrt(n)
    assert torch.all((outer.mean(0) - (cov + torch.outer(mu, mu))).abs() < FOUR_SE * se)
    quad = torch.einsum("ni,ij,nj->n", x - m, mat, x - m)  # (n,)
    closed = torch.trace(mat @ cov) + (mu - m) @ mat @ (mu - m)
    assert abs(quad.mean() - closed) < FOUR_SE * quad.std() / math.sqrt(n)


# -- Section 3: KL divergence between Gaussians -----------------------------------------------------
def test_gaussian_kl_formula_matches_torch():
    """Eq. (eq-prob-gauss-kl): the multivariate Gaussian KL equals torch.distributions.kl_divergence
    on random SPD covariances (D = 1..6), and so do its univariate (eq-prob-kl-univariate), diagonal
    (eq-prob-kl-diagonal) and standard-normal (eq-prob-kl-std-normal) special cases."""
    gen = torch.Generator().manual_seed(8)
    for d in range(1, 7):
        for _ in range(5):
            mu0, mu1 = torch.randn(d, generator=gen, dtype=DT), torch.randn(d, generator=gen, dtype=DT)
            cov0, cov1 = random_spd(d, gen), random_spd(d, gen)
            ours = gaussian_kl(mu0, cov0, mu1, cov1)
            ref = kl_divergence(MultivariateNormal(mu0, cov0), MultivariateNormal(mu1, cov1))
            torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
            assert ours > 0  # Gibbs' inequality (thm-prob-gibbs) for distinct Gaussians
        torch.testing.assert_close(gaussian_kl(mu0, cov0, mu0, cov0), torch.zeros((), dtype=DT), atol=1e-12, rtol=0)

    m0, m1 = torch.randn(2, 7, generator=gen, dtype=DT)
    s0, s1 = torch.exp(0.5 * torch.randn(2, 7, generator=gen, dtype=DT))
    # univariate: elementwise against torch's Normal-Normal KL
    torch.testing.assert_close(kl_univariate(m0, s0, m1, s1), kl_divergence(Normal(m0, s0), Normal(m1, s1)),
                               rtol=1e-12, atol=1e-12)
    # diagonal: against torch's Independent-Normal KL and against the full formula with diagonal matrices
    diag_ref = kl_divergence(Independent(Normal(m0, s0), 1), Independent(Normal(m1, s1), 1))
    torch.testing.assert_close(kl_diagonal(m0, s0, m1, s1), diag_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl_diagonal(m0, s0, m1, s1), gaussian_kl(m0, torch.diag(s0**2), m1, torch.diag(s1**2)),
                               rtol=1e-10, atol=1e-12)
    # KL to the standard normal (the VAE's prior-matching term)
    std_ref = kl_divergence(Independent(Normal(m0, s0), 1), Independent(Normal(torch.zeros_like(m0), 1.0), 1))
    torch.testing.assert_close(kl_to_standard_normal(m0, s0), std_ref, rtol=1e-12, atol=1e-12)
    # the formula is not symmetric (ex-prob-kl-asymmetry): KL(N(0,1)||N(0,4)) != KL(N(0,4)||N(0,1))
    one, two, zero = (torch.tensor(v, dtype=DT) for v in (1.0, 2.0, 0.0))
    assert kl_univariate(zero, one, zero, two) == pytest.approx(math.log(2) + 1 / 8 - 1 / 2, rel=1e-12)
    assert kl_univariate(zero, two, zero, one) == pytest.approx(-math.log(2) + 2 - 1 / 2, rel=1e-12)


# -- Section 4: Jensen's inequality -----------------------------------------------------------------
def test_jensen_inequality():
    """Thm. (thm-prob-jensen): f(E X) <= E f(X) for convex f (exp, square, abs, softplus, x log x,
    -log), log E[w] >= E[log w] for positive w (eq-prob-elbo-jensen), on empirical distributions of
    random draws; the supporting line f(x) >= f(m) + f'(m)(x - m) (eq-prob-supporting-line) by autograd;
    and the inequality reverses for a concave f, so the check can tell the two apart. The book's use,
    Eq. (eq-prob-elbo-jensen), with an exact gap: z ~ N(0, 1), x | z ~ N(z, s^2) and q(z) = N(mu + d, v), v the
    posterior variance; then log w = log p(x, z) - log q(z) is Gaussian with variance d^2 / v, E_q[w] = p(x)
    (torch's Normal), and log E[w] - E[log w] = Var[log w] / 2 = d^2 / (2 v) > 0, each within 4 SE of the
    Monte Carlo averages of 200 000 weights."""
    gen = torch.Generator().manual_seed(9)
    convex = {
        "exp": torch.exp,
        "square": lambda x: x**2,
        "abs": torch.abs,
        "softplus": torch.nn.functional.softplus,
        "xlogx": lambda x: x.abs() * torch.log(x.abs()),  # evaluated on positive draws only
        "neglog": lambda x: -torch.log(x.abs()),  # evaluated on positive draws only
    }
    slack = 1e-12  # Jensen holds exactly for the empirical distribution; allow float64 round-off
    for trial in range(20):
        x = torch.randn(50, generator=gen, dtype=DT) * (1 + trial / 5)
        pos = torch.exp(torch.randn(50, generator=gen, dtype=DT) * (1 + trial / 5))  # positive draws
        for name, f in convex.items():
            sample = pos if name in ("xlogx", "neglog") else x
            assert f(sample).mean() >= f(sample.mean()) - slack, name
        w = pos  # importance weights p(x, z) / q(z) are positive
        assert torch.log(w.mean()) >= torch.log(w).mean() - slack
        assert torch.sqrt(pos).mean() <= torch.sqrt(pos.mean()) + slack  # concave: reversed
    # equality when X is constant
    const = torch.full((10,), 1.7, dtype=DT)
    assert torch.log(const.mean()) == pytest.approx(torch.log(const).mean().item(), abs=1e-15)
    # the supporting line at m lies below the graph of a differentiable convex f
    m = torch.tensor(0.3, dtype=DT, requires_grad=True)
    grid = torch.linspace(-4, 4, 401, dtype=DT)
    for name in ("exp", "square", "softplus"):
        f = convex[name]
        (slope,) = torch.autograd.grad(f(m), m)
        assert torch.all(f(grid) >= f(m).detach() + slope * (grid - m.detach()) - slack), name
    # the ELBO's Jensen gap in closed form: a log-normal importance weight
    x, s_lik, d, n = 0.8, 0.6, 0.5, 200_000
    post_var = 1 / (1 + 1 / s_lik**2)
    post_mean = post_var * x / s_lik**2
    log_px = Normal(0.0, math.sqrt(1 + s_lik**2)).log_prob(torch.tensor(x, dtype=DT))
    q = Normal(torch.tensor(post_mean + d, dtype=DT), math.sqrt(post_var))
    z = q.loc + q.scale * torch.randn(n, generator=gen, dtype=DT)  # (n,) ~ q, seeded
    log_w = Normal(0.0, 1.0).log_prob(z) + Normal(z, s_lik).log_prob(torch.tensor(x, dtype=DT)) - q.log_prob(z)  # (n,)
    gap = d**2 / (2 * post_var)  # = KL(q || p(z | x)) = Var[log w] / 2
    se_log_w = log_w.std() / n**0.5
    assert abs(log_w.mean() - (log_px - gap)) < FOUR_SE * se_log_w  # E[log w] = log p(x) - gap
    assert abs(log_w.var() - 2 * gap) < FOUR_SE * 2 * gap * math.sqrt(2 / n)  # Gaussian: Var of a variance
    w_ratio = torch.exp(log_w - log_px)  # w / p(x): mean 1, log-normal
    assert abs(w_ratio.mean() - 1) < FOUR_SE * w_ratio.std() / n**0.5  # log E[w] = log p(x)
    assert gap > 50 * se_log_w  # the inequality is strict here, and the gap is resolved


# -- Section 5: Gaussian convolution of a mixture ---------------------------------------------------
def test_noised_mixture_density_by_quadrature():
    """Eq. (eq-prob-noised-mixture): for a 1-D mixture prior and x_t = alpha x_0 + sigma eps, the
    closed form sum_k pi_k N(x_t; alpha mu_k, alpha^2 s_k^2 + sigma^2) equals the convolution
    integral (eq-prob-pt-integral) int p_0(x_0) N(x_t; alpha x_0, sigma^2) dx_0 by scipy quad."""
    pi, mu, s = mixture_1d()
    p0 = lambda x0: sum(float(pi[k]) * normal_pdf(x0, float(mu[k]), float(s[k])) for k in range(3))  # noqa: E731
    for alpha, sigma in NOISE_LEVELS:
        xt = torch.linspace(-3.5, 3.5, 15, dtype=DT)
        closed = torch.exp(noised_mixture_log_prob(xt, pi, mu, s, alpha, sigma))
        for x, c in zip(xt.tolist(), closed.tolist()):
            numeric, _ = integrate.quad(lambda x0, x=x, a=alpha, sd=sigma: p0(x0) * normal_pdf(x, a * x0, sd), -12, 12,
                                        points=[float(v) for v in mu] + [x / alpha], limit=200,
                                        epsabs=1e-14, epsrel=1e-11)
            assert numeric == pytest.approx(c, rel=1e-8, abs=1e-13)  # quad reaches ~1e-11; 1e-8 is slack


def test_mixture_score_is_responsibility_weighted():
    """Eq. (eq-prob-mixture-score): the score of a 2-D Gaussian mixture (full covariances) equals the
    responsibility-weighted component scores -sum_k r_k(x) Sigma_k^{-1} (x - mu_k); oracle: autograd of
    torch's MixtureSameFamily log-density, for the clean mixture and its noised versions (eq-prob-noised-mixture)."""
    gen = torch.Generator().manual_seed(10)
    k, d = 4, 2
    pi = torch.softmax(torch.randn(k, generator=gen, dtype=DT), 0)
    mu = 2 * torch.randn(k, d, generator=gen, dtype=DT)
    covs = torch.stack([random_spd(d, gen, jitter=0.05) * 0.3 for _ in range(k)])  # (K, D, D)
    x = 2 * torch.randn(100, d, generator=gen, dtype=DT)  # (B, D)
    for alpha, sigma in [(1.0, 0.0)] + NOISE_LEVELS:
        mu_t = alpha * mu
        covs_t = alpha**2 * covs + sigma**2 * torch.eye(d, dtype=DT)  # (K, D, D)
        # the formula: responsibilities times component scores
        log_joint = torch.log(pi) + MultivariateNormal(mu_t, covs_t).log_prob(x[:, None, :])  # (B, K)
        resp = torch.softmax(log_joint, dim=1)  # (B, K), eq. (eq-prob-responsibility)
        comp_score = -torch.linalg.solve(covs_t, (x[:, None, :] - mu_t)[..., None])[..., 0]  # (B, K, D)
        ours = (resp[..., None] * comp_score).sum(1)  # (B, D)
        # the oracle: autograd through torch's own mixture density
        mix = MixtureSameFamily(Categorical(probs=pi), MultivariateNormal(mu_t, covs_t))
        xg = x.clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(mix.log_prob(xg).sum(), xg)
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
        # the check can fail: an unweighted average of component scores is wrong
        assert not torch.allclose(comp_score.mean(1), ref, rtol=1e-3, atol=1e-3)


def _posterior_moment_by_quadrature(x, fn, pi, mu, s, alpha, sigma):
    """int fn(x_0) p_0(x_0) N(x; alpha x_0, sigma^2) dx_0 / p_t(x), both integrals by scipy quad."""
    def joint(x0):
        prior = sum(float(pi[k]) * normal_pdf(x0, float(mu[k]), float(s[k])) for k in range(len(pi)))
        return prior * normal_pdf(x, alpha * x0, sigma)

    opts = dict(points=[float(v) for v in mu] + [x / alpha], limit=200, epsabs=1e-14, epsrel=1e-11)
    num, _ = integrate.quad(lambda x0: fn(x0) * joint(x0), -12, 12, **opts)
    den, _ = integrate.quad(joint, -12, 12, **opts)
    return num / den


def test_mixture_posterior_mean_by_quadrature():
    """Eq. (eq-prob-mixture-posterior-mean): E[x_0 | x_t] of a 1-D mixture prior equals the
    responsibility-weighted Gaussian posterior means (eq-prob-gauss-posterior); oracle: the ratio of
    integrals int x_0 p_0(x_0) N(x_t; alpha x_0, sigma^2) dx_0 / p_t(x_t) by scipy quad."""
    pi, mu, s = mixture_1d()
    for alpha, sigma in NOISE_LEVELS:
        xt = torch.linspace(-3.0, 3.0, 9, dtype=DT)
        var_t = alpha**2 * s**2 + sigma**2  # (K,)
        log_joint = torch.log(pi) + Normal(alpha * mu, torch.sqrt(var_t)).log_prob(xt[:, None])  # (B, K)
        resp = torch.softmax(log_joint, dim=1)
        comp_mean = mu + alpha * s**2 / var_t * (xt[:, None] - alpha * mu)  # (B, K)
        ours = (resp * comp_mean).sum(1)
        for x, o in zip(xt.tolist(), ours.tolist()):
            ref = _posterior_moment_by_quadrature(x, lambda x0: x0, pi, mu, s, alpha, sigma)
            assert o == pytest.approx(ref, rel=1e-7, abs=1e-9)  # quadrature error ~1e-11


# -- Section 6: Tweedie's formula -------------------------------------------------------------------
def test_tweedie_gaussian_prior():
    """Eq. (eq-prob-tweedie) for x_0 ~ N(m, s^2): (x_t + sigma^2 d/dx log p_t) / alpha, with the
    derivative by autograd of torch's N(alpha m, alpha^2 s^2 + sigma^2) log-density, equals the
    conditioning formula (eq-prob-gauss-posterior, the Wiener filter of ex-prob-tweedie-wiener);
    the posterior mean and variance are also checked by quadrature."""
    m, s = 0.7, 1.3
    for alpha, sigma in NOISE_LEVELS:
        xt = torch.linspace(-4, 4, 17, dtype=DT, requires_grad=True)
        std_t = torch.tensor(alpha**2 * s**2 + sigma**2, dtype=DT).sqrt()  # float64 parameters, not float32
        log_pt = Normal(torch.tensor(alpha * m, dtype=DT), std_t).log_prob(xt)
        (score,) = torch.autograd.grad(log_pt.sum(), xt)
        tweedie = (xt.detach() + sigma**2 * score) / alpha
        gain = alpha * s**2 / (alpha**2 * s**2 + sigma**2)
        wiener = m + gain * (xt.detach() - alpha * m)
        torch.testing.assert_close(tweedie, wiener, rtol=1e-12, atol=1e-12)
        post_var = s**2 * sigma**2 / (alpha**2 * s**2 + sigma**2)
        prior = (torch.ones(1, dtype=DT), torch.tensor([m], dtype=DT), torch.tensor([s], dtype=DT))  # one component
        for x, w in zip(xt.detach().tolist()[::4], wiener.tolist()[::4]):
            mean_q = _posterior_moment_by_quadrature(x, lambda x0: x0, *prior, alpha, sigma)
            sq_q = _posterior_moment_by_quadrature(x, lambda x0: x0**2, *prior, alpha, sigma)
            assert mean_q == pytest.approx(w, rel=1e-8, abs=1e-10)
            assert sq_q - mean_q**2 == pytest.approx(post_var, rel=1e-6)  # a difference of two ~1e-11 integrals


def test_tweedie_mixture_by_quadrature():
    """Eq. (eq-prob-tweedie) for a 1-D mixture prior: E[x_0 | x_t] by quadrature equals
    (x_t + sigma^2 d/dx log p_t(x_t)) / alpha, with the derivative by autograd of the closed-form
    log p_t (eq-prob-noised-mixture); and E[eps | x_t] by quadrature equals -sigma d/dx log p_t
    (eq-prob-tweedie-eps)."""
    pi, mu, s = mixture_1d()
    for alpha, sigma in NOISE_LEVELS:
        xt = torch.linspace(-3.0, 3.0, 9, dtype=DT, requires_grad=True)
        (score,) = torch.autograd.grad(noised_mixture_log_prob(xt, pi, mu, s, alpha, sigma).sum(), xt)
        tweedie_x0 = (xt.detach() + sigma**2 * score) / alpha
        tweedie_eps = -sigma * score
        for x, tx0, teps in zip(xt.detach().tolist(), tweedie_x0.tolist(), tweedie_eps.tolist()):
            ref_x0 = _posterior_moment_by_quadrature(x, lambda x0: x0, pi, mu, s, alpha, sigma)
            ref_eps = _posterior_moment_by_quadrature(x, lambda x0, x=x, a=alpha, sd=sigma: (x - a * x0) / sd,
                                                      pi, mu, s, alpha, sigma)
            assert tx0 == pytest.approx(ref_x0, rel=1e-7, abs=1e-9)  # quadrature error ~1e-11
            assert teps == pytest.approx(ref_eps, rel=1e-7, abs=1e-9)
        # the check can fail: the formula with sigma instead of sigma^2 is visibly off at these points
        wrong = (xt.detach() + sigma * score) / alpha
        assert (wrong - tweedie_x0).abs().max() > 1e-3


# -- Section 7: Monte Carlo estimation and standard errors ------------------------------------------
def test_standard_error_coverage():
    """Eq. (eq-prob-four-se): repeating a Monte Carlo estimate of a skewed mean (exponential draws,
    true mean 1) 4000 times, the 4-SE rule flags almost no correct estimate, and the 2-SE rule flags
    about 4.55% of them, as the normal approximation of eq. (eq-prob-mc-se) predicts."""
    gen = torch.Generator().manual_seed(11)
    reps, n = 4000, 400
    draws = -torch.log(torch.rand(reps, n, generator=gen, dtype=DT))  # Exp(1): mean 1, sd 1, skewed
    z = (draws.mean(1) - 1.0) / (draws.std(1) / math.sqrt(n))  # (reps,) standardised errors
    # expected 4-SE false alarms: 4000 * 6.3e-5 = 0.25 under normality; skewness adds a little, and
    # 5 would be a rate of 1.25e-3, still negligible for a test suite of a few hundred comparisons
    assert (z.abs() > 4).sum() <= 5
    # 2-SE rate: binomial SE of the rate is sqrt(0.0455 * 0.9545 / 4000) = 0.0033; allow 4 of them
    rate2 = (z.abs() > 2).double().mean().item()
    assert abs(rate2 - 2 * (1 - 0.9772498680518208)) < 4 * 0.0033
    # the check can fail: an SE that forgets the square root (s / n) flags nearly every estimate
    z_wrong = (draws.mean(1) - 1.0) / (draws.std(1) / n)
    assert (z_wrong.abs() > 4).double().mean() > 0.5


def test_importance_sampling_and_bound():
    """Eq. (eq-prob-importance): E_q[p(x, z) / q(z)] = p(x) (importance sampling, within 4 SE), and
    E[log (1/K) sum_k w_k] <= log p(x), rising with K (the bound of eq. eq-prob-elbo-jensen and its
    K-sample version); model z ~ N(0, 1), x | z ~ N(z, 1), so p(x) = N(x; 0, 2) exactly."""
    gen = torch.Generator().manual_seed(12)
    x = 1.5
    log_px = Normal(torch.tensor(0.0, dtype=DT), torch.tensor(2.0, dtype=DT).sqrt()).log_prob(torch.tensor(x, dtype=DT))
    q = Normal(torch.tensor(0.5, dtype=DT), torch.tensor(1.0, dtype=DT))  # a deliberately imperfect proposal
    n, kmax = 20_000, 16
    z = q.mean + q.stddev * torch.randn(n, kmax, generator=gen, dtype=DT)  # (n, K)
    log_w = Normal(0.0, 1.0).log_prob(z) + Normal(z, 1.0).log_prob(torch.tensor(x, dtype=DT)) - q.log_prob(z)
    w = torch.exp(log_w).flatten()
    assert abs(w.mean() - torch.exp(log_px)) < FOUR_SE * w.std() / math.sqrt(w.numel())
    est = {k: torch.logsumexp(log_w[:, :k], dim=1) - math.log(k) for k in (1, 4, 16)}  # (n,) each
    for k, e in est.items():  # each is a lower bound on log p(x), up to Monte Carlo error
        assert e.mean() < log_px + FOUR_SE * e.std() / math.sqrt(n), k
    # the bound tightens with K: paired differences (same draws) are positive by more than 4 SE
    for lo, hi in ((1, 4), (4, 16)):
        diff = est[hi] - est[lo]  # (n,)
        assert diff.mean() > FOUR_SE * diff.std() / math.sqrt(n), (lo, hi)
