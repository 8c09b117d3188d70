"""Numerical checks of the derivations in book/01_maximum_likelihood.md (chapter 1).

Each test names, in the first words of its docstring, the equation, theorem or exercise of the
chapter that it checks. The formulas of the chapter are written out below by hand (the functions
whose names start with `book_`); the tests compare them with an independent oracle: SciPy,
torch.distributions, autograd, numerical quadrature, or Monte Carlo with a tolerance derived from
its standard error. Every random draw is seeded. Everything runs in float64.
"""
import math

import numpy as np
import torch
from scipy import optimize, special, stats
from torch.distributions import (
    Categorical,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

DT = torch.float64


# ---------------------------------------------------------------------------------------------
# The chapter's formulas, written as the page writes them
# ---------------------------------------------------------------------------------------------


def book_discrete_kl(p, q):
    """Eq. (eq-ml-kl-discrete): sum_k p_k log(p_k / q_k), with 0 log 0 = 0. p, q: (..., K)."""
    p, q = np.broadcast_arrays(p, q)
    safe_p = np.where(p > 0, p, 1.0)  # terms with p_k = 0 contribute 0 whatever q_k is
    safe_q = np.where(p > 0, q, 1.0)
    with np.errstate(divide="ignore"):  # q_k = 0 < p_k gives +inf, the correct value of the KL
        return np.where(p > 0, p * (np.log(safe_p) - np.log(safe_q)), 0.0).sum(-1)


def book_gaussian_log_prob(x, mu, Sigma):
    """Eq. (eq-ml-gaussian-density): log N(x; mu, Sigma) via a Cholesky factor. x: (B, D)."""
    D = mu.shape[-1]
    L = torch.linalg.cholesky(Sigma)  # (D, D), Sigma = L L^T
    diff = (x - mu).unsqueeze(-1)  # (B, D, 1)
    white = torch.linalg.solve_triangular(L, diff, upper=False).squeeze(-1)  # (B, D) = L^{-1}(x - mu)
    log_det = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (D * math.log(2 * math.pi) + log_det + (white**2).sum(-1))


def book_gaussian_entropy(Sigma):
    """Eq. (eq-ml-gaussian-entropy): H(N(mu, Sigma)) = D/2 (1 + log 2 pi) + 1/2 log det Sigma."""
    D = Sigma.shape[-1]
    return 0.5 * D * (1.0 + math.log(2 * math.pi)) + 0.5 * torch.logdet(Sigma)


def book_gaussian_kl(mu0, Sigma0, mu1, Sigma1):
    """Eq. (eq-ml-gaussian-kl): KL(N(mu0, Sigma0) || N(mu1, Sigma1)). mu: (..., D), Sigma: (..., D, D)."""
    D = mu0.shape[-1]
    Sigma1_inv = torch.linalg.inv(Sigma1)
    diff = mu1 - mu0  # (..., D)
    trace = (Sigma1_inv @ Sigma0).diagonal(dim1=-2, dim2=-1).sum(-1)
    quad = torch.einsum("...i,...ij,...j->...", diff, Sigma1_inv, diff)
    return 0.5 * (trace + quad - D + torch.logdet(Sigma1) - torch.logdet(Sigma0))


def book_univariate_gaussian_kl(m0, s0, m1, s1):
    """Exercise (ex-ml-univariate-kl): KL(N(m0, s0^2) || N(m1, s1^2))."""
    return math.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5


def book_logsumexp(a):
    """Eq. (eq-ml-logsumexp): log sum_k exp(a_k) = a* + log sum_k exp(a_k - a*), over the last axis."""
    a_star = a.max(dim=-1, keepdim=True).values  # (B, 1)
    return a_star.squeeze(-1) + torch.log(torch.exp(a - a_star).sum(-1))


def book_component_log_joint(x, logits, mus, Sigmas):
    """a_k(x) = log pi_k + log N(x; mu_k, Sigma_k). x: (B, D); returns (B, K)."""
    log_pi = torch.log_softmax(logits, dim=-1)  # (K,)
    K = logits.shape[0]
    cols = [book_gaussian_log_prob(x, mus[k], Sigmas[k]) for k in range(K)]
    return log_pi + torch.stack(cols, dim=-1)  # (B, K)


def book_mixture_log_prob(x, logits, mus, Sigmas):
    """Eq. (eq-ml-gmm-logp): log p(x) of a Gaussian mixture via the stable log-sum-exp. (B,)."""
    return book_logsumexp(book_component_log_joint(x, logits, mus, Sigmas))


def random_spd(D, gen, batch=(), jitter=0.3):
    """Random symmetric positive definite (*batch, D, D) matrices, eigenvalues >= `jitter`."""
    A = torch.randn(*batch, D, D, generator=gen, dtype=DT)
    return A @ A.transpose(-1, -2) / D + jitter * torch.eye(D, dtype=DT)


def sample_gaussian(mu, Sigma, n, gen):
    """n draws of N(mu, Sigma) as mu + L eps, eps ~ N(0, I). (n, D)."""
    L = torch.linalg.cholesky(Sigma)
    eps = torch.randn(n, mu.shape[-1], generator=gen, dtype=DT)
    return mu + eps @ L.T


def mixture_1d_log_prob(x, weights, means, stds):
    """log of a 1-D Gaussian mixture on a NumPy grid (SciPy oracle, stable). x: (G,)."""
    comps = stats.norm.logpdf(x[:, None], loc=means, scale=stds) + np.log(weights)  # (G, K)
    return special.logsumexp(comps, axis=-1)


def trapezoid(y, x):
    """Trapezoidal rule along the last axis (NumPy renamed trapz -> trapezoid)."""
    return np.sum(0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(x), axis=-1)


# ---------------------------------------------------------------------------------------------
# KL divergence, maximum likelihood and Gibbs' inequality
# ---------------------------------------------------------------------------------------------


def test_kl_is_nonnegative():
    """Thm. (thm-ml-gibbs): KL(p || q) >= 0 with equality iff p = q, on random pairs of discrete
    distributions (Dirichlet draws, some with zero entries; checked against scipy.special.rel_entr
    and scipy.stats.entropy) and on random pairs of multivariate Gaussians (torch.distributions)."""
    rng = np.random.default_rng(0)
    K = 6
    p = rng.dirichlet(0.5 * np.ones(K), size=500)  # (500, K)
    q = rng.dirichlet(0.5 * np.ones(K), size=500)
    p[:50, :2] = 0.0  # the convention 0 log 0 = 0 (Eq. eq-ml-kl-discrete)
    p[:50] /= p[:50].sum(-1, keepdims=True)

    kl = book_discrete_kl(p, q)
    # Independent computations; both sum the same ~6 terms, so agreement to 1e-12 is round-off.
    np.testing.assert_allclose(kl, special.rel_entr(p, q).sum(-1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(kl, stats.entropy(p, q, axis=-1), rtol=1e-12, atol=1e-14)
    assert kl.min() > 0.0  # p != q for every random pair: strictly positive
    np.testing.assert_allclose(book_discrete_kl(p, p), 0.0, atol=1e-15)
    # Not symmetric: KL(p||q) and KL(q||p) differ for generic pairs, and KL(q||p) = +inf where
    # p has zeros that q does not share.
    kl_rev = book_discrete_kl(q, p)
    assert np.isinf(kl_rev[:50]).all() and np.abs(kl[50:] - kl_rev[50:]).max() > 0.1

    gen = torch.Generator().manual_seed(1)
    B = 200  # a batch of random pairs per dimension
    for D in (1, 2, 5):
        mu0, mu1 = torch.randn(B, D, generator=gen, dtype=DT), torch.randn(B, D, generator=gen, dtype=DT)
        S0, S1 = random_spd(D, gen, (B,)), random_spd(D, gen, (B,))
        p, q = MultivariateNormal(mu0, S0), MultivariateNormal(mu1, S1)
        assert (kl_divergence(p, q) > 0.0).all() and (book_gaussian_kl(mu0, S0, mu1, S1) > 0.0).all()
        assert kl_divergence(p, p).abs().max() < 1e-12  # round-off of O(D) float64 terms
        assert book_gaussian_kl(mu0, S0, mu0, S0).abs().max() < 1e-12


def test_mle_kl_identity():
    """Eq. (eq-ml-nll-entropy-kl): E_p[-log q] - H(p) = KL(p || q). For two random 3-D Gaussians,
    a Monte Carlo estimate of the cross-entropy (the 'test NLL') minus the closed-form entropy
    matches torch.distributions.kl_divergence within 4 standard errors."""
    gen = torch.Generator().manual_seed(2)
    D, M = 3, 200_000
    for _ in range(3):
        mu_p, mu_q = torch.randn(D, generator=gen, dtype=DT), torch.randn(D, generator=gen, dtype=DT)
        S_p, S_q = random_spd(D, gen), random_spd(D, gen)
        p, q = MultivariateNormal(mu_p, S_p), MultivariateNormal(mu_q, S_q)
        x = sample_gaussian(mu_p, S_p, M, gen)  # (M, D) "test set" drawn from the truth p
        nll = -q.log_prob(x)  # (M,)
        estimate = nll.mean() - book_gaussian_entropy(S_p)
        se = nll.std() / math.sqrt(M)  # the entropy is exact, so all the noise is in the mean NLL
        exact = kl_divergence(p, q)
        # 4 SE: a correct identity fails with probability ~6e-5. With M = 2e5 the SE is ~1e-2,
        # far below the 0.5-nat error of, e.g., dropping the '+D/2' from the entropy.
        assert abs(estimate - exact) < 4 * se, (float(estimate), float(exact), float(se))


def test_gaussian_density_and_entropy():
    """Eqs. (eq-ml-gaussian-density) and (eq-ml-gaussian-entropy): the Gaussian log-density agrees
    with scipy.stats.multivariate_normal, and the closed-form entropy agrees with
    torch.distributions and with a Monte Carlo average of -log p (within 4 SE)."""
    gen = torch.Generator().manual_seed(3)
    for D in (1, 2, 4):
        mu, S = torch.randn(D, generator=gen, dtype=DT), random_spd(D, gen)
        x = sample_gaussian(mu, S, 100_000, gen)
        logp = book_gaussian_log_prob(x, mu, S)
        oracle = stats.multivariate_normal(mu.numpy(), S.numpy()).logpdf(x.numpy()).reshape(-1)
        np.testing.assert_allclose(logp.numpy(), oracle, rtol=1e-10, atol=1e-10)
        H = book_gaussian_entropy(S)
        assert torch.allclose(H, MultivariateNormal(mu, S).entropy(), rtol=1e-12)
        se = logp.std() / math.sqrt(len(logp))
        assert abs(-logp.mean() - H) < 4 * se


def test_gaussian_mle_equals_sample_moments():
    """Eq. (eq-ml-gaussian-mle): minimising the Gaussian NLL by a gradient method (L-BFGS with
    autograd gradients, float64, Sigma = L L^T with a Cholesky factor whose diagonal is exp of a
    free parameter) converges to
    the sample mean and the biased 1/N sample covariance; and at those moments the autograd
    gradient of the log-likelihood with respect to mu and Sigma vanishes."""
    gen = torch.Generator().manual_seed(4)
    D, N = 3, 400
    x = sample_gaussian(torch.tensor([1.0, -2.0, 0.5], dtype=DT), random_spd(D, gen), N, gen)
    x_bar = x.mean(0)
    S_N = (x - x_bar).T @ (x - x_bar) / N  # the claimed MLE
    S_unbiased = S_N * N / (N - 1)

    # Unconstrained parameters theta = (mu, strict lower triangle of L, log of L's diagonal), so
    # Sigma = L L^T is symmetric positive definite for every theta. L-BFGS is SciPy's, with the
    # gradient from autograd (torch.optim would import torch._dynamo, ~2 s, for nothing).
    tril = torch.tril_indices(D, D, offset=-1)
    n_low = tril.shape[1]

    def unpack(theta):
        mu, lower, log_diag = theta[:D], theta[D : D + n_low], theta[D + n_low :]
        L = torch.diag(torch.exp(log_diag)).index_put((tril[0], tril[1]), lower)
        return mu, L

    def nll_and_grad(theta_np):
        theta = torch.tensor(theta_np, dtype=DT, requires_grad=True)
        mu, L = unpack(theta)
        nll = -MultivariateNormal(mu, scale_tril=L).log_prob(x).mean()
        (g,) = torch.autograd.grad(nll, theta)
        return nll.item(), g.numpy()

    res = optimize.minimize(nll_and_grad, np.zeros(D + n_low + D), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 1000})
    mu, L = unpack(torch.tensor(res.x, dtype=DT))
    # The NLL is smooth with a well-conditioned Hessian here, and L-BFGS stops at gradient norm
    # ~1e-11, so parameters are accurate to ~1e-9; 1e-6 is loose for round-off yet 1000x smaller
    # than the gap S_N / (N - 1) ~ 2.5e-3 between the 1/N and 1/(N-1) covariances.
    torch.testing.assert_close(mu, x_bar, rtol=0, atol=1e-6)
    torch.testing.assert_close(L @ L.T, S_N, rtol=0, atol=1e-6)
    assert (L @ L.T - S_unbiased).abs().max() > 1e-4

    # The stationarity conditions of the derivation, by autograd at the closed-form solution.
    def grads(mu0, Sigma0):
        mu0 = mu0.clone().requires_grad_(True)
        Sigma0 = Sigma0.clone().requires_grad_(True)
        loglik = book_gaussian_log_prob(x, mu0, Sigma0).sum()
        return torch.autograd.grad(loglik, (mu0, Sigma0))

    g_mu, g_Sigma = grads(x_bar, S_N)
    assert g_mu.abs().max() < 1e-9 and g_Sigma.abs().max() < 1e-9  # sums of N=400 O(1) terms
    g_mu, g_Sigma = grads(x_bar, S_unbiased)
    assert g_Sigma.abs().max() > 1e-2  # the unbiased covariance is not a stationary point


def test_covariance_mle_bias():
    """Exercise (ex-ml-covariance-bias): E[Sigma_hat] = (N - 1)/N Sigma for the 1/N sample
    covariance; a Monte Carlo average over 40,000 data sets of size N = 5 agrees within 4 SE
    element-wise and is more than 4 SE away from Sigma itself."""
    gen = torch.Generator().manual_seed(5)
    D, N, R = 2, 5, 40_000
    Sigma = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=DT)
    x = sample_gaussian(torch.zeros(D, dtype=DT), Sigma, R * N, gen).reshape(R, N, D)
    centred = x - x.mean(1, keepdim=True)
    S_hat = centred.transpose(1, 2) @ centred / N  # (R, D, D)
    mean, se = S_hat.mean(0), S_hat.std(0) / math.sqrt(R)
    assert ((mean - (N - 1) / N * Sigma).abs() < 4 * se).all()
    assert ((mean - Sigma).abs() > 4 * se).any()


def test_gaussian_kl_closed_form():
    """Eq. (eq-ml-gaussian-kl) and Exercise (ex-ml-univariate-kl): the closed-form KL between two
    Gaussians agrees with torch.distributions.kl_divergence on random means and random SPD
    covariances in 1, 2, 3 and 6 dimensions."""
    gen = torch.Generator().manual_seed(6)
    B = 100
    for D in (1, 2, 3, 6):
        mu0, mu1 = torch.randn(B, D, generator=gen, dtype=DT), torch.randn(B, D, generator=gen, dtype=DT)
        S0, S1 = random_spd(D, gen, (B,)), random_spd(D, gen, (B,))
        oracle = kl_divergence(MultivariateNormal(mu0, S0), MultivariateNormal(mu1, S1))  # (B,)
        # Both are a handful of float64 operations on well-conditioned matrices.
        torch.testing.assert_close(book_gaussian_kl(mu0, S0, mu1, S1), oracle, rtol=1e-10, atol=1e-12)
    m = torch.randn(B, 2, generator=gen, dtype=DT)
    s = 0.2 + 3 * torch.rand(B, 2, generator=gen, dtype=DT)
    oracle = kl_divergence(Normal(m[:, 0], s[:, 0]), Normal(m[:, 1], s[:, 1]))
    for i in range(B):
        m0, m1, s0, s1 = m[i, 0].item(), m[i, 1].item(), s[i, 0].item(), s[i, 1].item()
        assert math.isclose(book_univariate_gaussian_kl(m0, s0, m1, s1), oracle[i].item(),
                            rel_tol=1e-10, abs_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# Forward and reverse KL for a single Gaussian fitted to two modes (1-D quadrature)
# ---------------------------------------------------------------------------------------------

GRID = np.linspace(-25.0, 25.0, 100_001)  # spacing 5e-4: trapezoid error ~1e-9 for these widths


def _forward_kl_1d(log_p, mu, sigma):
    """KL(p || N(mu, sigma^2)) by quadrature on GRID, with log p given on the grid."""
    p = np.exp(log_p)
    return trapezoid(p * (log_p - stats.norm.logpdf(GRID, mu, sigma)), GRID)


def _reverse_kl_1d(log_p, mu, sigma):
    """KL(N(mu, sigma^2) || p) by quadrature on GRID."""
    log_q = stats.norm.logpdf(GRID, mu, sigma)
    return trapezoid(np.exp(log_q) * (log_q - log_p), GRID)


def test_best_gaussian_kl_is_entropy_gap():
    """Eq. (eq-ml-entropy-gap): for any density p, the forward KL from p to its moment-matched
    Gaussian equals H(N(mean_p, var_p)) - H(p); checked by quadrature on a skewed three-component
    mixture, and the two-mode approximation 1/2 log(1 + m^2/s^2) - log 2 of Example
    (exa-ml-two-modes) for well-separated modes."""
    w, m, s = np.array([0.5, 0.3, 0.2]), np.array([-2.0, 1.0, 4.0]), np.array([0.7, 1.2, 0.4])
    log_p = mixture_1d_log_prob(GRID, w, m, s)
    p = np.exp(log_p)
    mean = np.sum(w * m)
    var = np.sum(w * (s**2 + m**2)) - mean**2
    H_p = -trapezoid(p * log_p, GRID)
    kl_direct = _forward_kl_1d(log_p, mean, math.sqrt(var))
    gap = 0.5 * math.log(2 * math.pi * math.e * var) - H_p
    assert abs(kl_direct - gap) < 1e-8  # same grid, two different integrands: quadrature error only
    assert kl_direct > 0.05  # a non-trivial, non-Gaussian target

    for ratio in (5.0, 8.0):  # m / s, well separated
        w2, m2, s2 = np.array([0.5, 0.5]), np.array([-ratio, ratio]), np.array([1.0, 1.0])
        log_p2 = mixture_1d_log_prob(GRID, w2, m2, s2)
        kl = _forward_kl_1d(log_p2, 0.0, math.sqrt(1 + ratio**2))
        # The approximation drops only the overlap of the modes, of order exp(-m^2 / (2 s^2)).
        assert abs(kl - (0.5 * math.log(1 + ratio**2) - math.log(2))) < 1e-4


def test_reverse_kl_mode_seeking():
    """Example (exa-ml-two-modes): fitting N(mu, sigma^2) to p = 1/2 N(-m, s^2) + 1/2 N(m, s^2) by
    forward KL (what maximum likelihood does) gives the wide moment-matched Gaussian mu = 0,
    sigma^2 = s^2 + m^2; by reverse KL, started off-centre, it locks onto one mode, mu ~ m,
    sigma ~ s, at reverse KL ~ log 2, while its forward KL is ~ m^2/s^2 - log 2. Quadrature in 1-D,
    minimised with SciPy's L-BFGS-B."""
    m, s = 4.0, 1.0
    log_p = mixture_1d_log_prob(GRID, np.array([0.5, 0.5]), np.array([-m, m]), np.array([s, s]))

    def fit(kl_fn, start):
        res = optimize.minimize(lambda th: kl_fn(log_p, th[0], math.exp(th[1])), start,
                                method="L-BFGS-B", bounds=[(-10, 10), (-3, 3)],
                                options={"ftol": 1e-14, "gtol": 1e-9})
        return res.x[0], math.exp(res.x[1]), res.fun

    # Forward KL: the minimiser is the moment-matched Gaussian (Eq. eq-ml-moment-matching).
    mu_f, sigma_f, _ = fit(_forward_kl_1d, np.array([1.5, 0.0]))
    assert abs(mu_f) < 1e-3 and abs(sigma_f - math.sqrt(s**2 + m**2)) < 1e-3  # optimiser tolerance

    # Reverse KL started nearer one mode: it locks onto that mode.
    mu_r, sigma_r, kl_r = fit(_reverse_kl_1d, np.array([2.0, 0.0]))
    assert abs(mu_r - m) < 1e-2 and abs(sigma_r - s) < 1e-2
    # KL(q||p) = log 2 - E_q[log(1 + exp(-2 m x / s^2))]; the correction is ~exp(-2 m^2/s^2).
    assert abs(kl_r - math.log(2)) < 1e-4
    # Reverse KL is not convex: started near the centre it stops at a wide symmetric local
    # minimum, a worse fit by reverse KL than either mode.
    mu_c, sigma_c, kl_c = fit(_reverse_kl_1d, np.array([0.5, 0.0]))
    assert abs(mu_c) < 1e-3 and sigma_c > 2 * s and kl_c > kl_r + 1.0
    # Its forward KL is huge (the other mode is missed) ...
    assert abs(_forward_kl_1d(log_p, m, s) - (m**2 / s**2 - math.log(2))) < 1e-3
    # ... while the wide Gaussian has the larger reverse KL: each criterion prefers its own fit.
    assert _reverse_kl_1d(log_p, 0.0, math.sqrt(s**2 + m**2)) > kl_r + 0.5
    assert _forward_kl_1d(log_p, 0.0, math.sqrt(s**2 + m**2)) < _forward_kl_1d(log_p, m, s) - 10


# ---------------------------------------------------------------------------------------------
# Gaussian mixtures
# ---------------------------------------------------------------------------------------------


def _random_mixture(gen, K=4, D=2, scale=0.05):
    logits = torch.randn(K, generator=gen, dtype=DT)
    mus = 3 * torch.randn(K, D, generator=gen, dtype=DT)
    Sigmas = torch.stack([scale * random_spd(D, gen) for _ in range(K)])
    return logits, mus, Sigmas


def test_mixture_log_prob_logsumexp():
    """Eqs. (eq-ml-gmm-logp) and (eq-ml-logsumexp): the stable log-sum-exp mixture log-density
    equals torch.distributions.MixtureSameFamily, and stays finite far from every component, where
    the naive log(sum(exp(a_k))) underflows to -inf."""
    gen = torch.Generator().manual_seed(7)
    logits, mus, Sigmas = _random_mixture(gen)
    oracle = MixtureSameFamily(Categorical(logits=logits), MultivariateNormal(mus, Sigmas))
    near = mus[torch.randint(0, 4, (200,), generator=gen)] + 0.3 * torch.randn(200, 2, generator=gen, dtype=DT)
    far = 60.0 + 5 * torch.randn(50, 2, generator=gen, dtype=DT)  # a_k ~ -1e4: exp(a_k) == 0.0
    x = torch.cat([near, far])

    stable = book_mixture_log_prob(x, logits, mus, Sigmas)
    torch.testing.assert_close(stable, oracle.log_prob(x), rtol=1e-11, atol=1e-9)
    assert torch.isfinite(stable).all()

    naive = torch.log(torch.exp(book_component_log_joint(x, logits, mus, Sigmas)).sum(-1))
    torch.testing.assert_close(naive[:200], stable[:200], rtol=1e-11, atol=1e-9)  # agree where safe
    assert torch.isinf(naive[200:]).all() and (naive[200:] < 0).all()  # underflow: log 0 = -inf


def test_mixture_gradient_is_responsibility_weighted():
    """Eq. (eq-ml-gmm-grad): the gradient of sum_i log p(x_i) with respect to mu_k is
    sum_i r_ik Sigma_k^{-1} (x_i - mu_k) and with respect to the logits is sum_i (r_ik - pi_k), with
    responsibilities r_ik = p(k | x_i) by Bayes' rule (Eq. eq-ml-responsibility); compared with
    autograd, and r_ik with the posterior of torch.distributions densities."""
    gen = torch.Generator().manual_seed(8)
    K, D, N = 3, 2, 50
    logits, mus, Sigmas = _random_mixture(gen, K=K, D=D, scale=1.0)
    x = 2 * torch.randn(N, D, generator=gen, dtype=DT)
    logits.requires_grad_(True)
    mus.requires_grad_(True)
    g_logits, g_mus = torch.autograd.grad(book_mixture_log_prob(x, logits, mus, Sigmas).sum(), (logits, mus))

    with torch.no_grad():
        pi = torch.softmax(logits, -1)
        dens = torch.stack([MultivariateNormal(mus[k], Sigmas[k]).log_prob(x).exp() for k in range(K)], -1)
        r = pi * dens / (pi * dens).sum(-1, keepdim=True)  # (N, K) Bayes' rule
        torch.testing.assert_close(torch.softmax(book_component_log_joint(x, logits, mus, Sigmas), -1), r)
        expected_mus = torch.stack(
            [(r[:, k : k + 1] * (x - mus[k])).sum(0) @ torch.linalg.inv(Sigmas[k]) for k in range(K)]
        )
        torch.testing.assert_close(g_mus, expected_mus, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(g_logits, (r - pi).sum(0), rtol=1e-10, atol=1e-10)


def test_mixture_singularity():
    """Eq. (eq-ml-singularity): with one component centred on a data point and covariance sigma^2 I,
    the mixture log-likelihood is bounded below by a quantity that grows like -D log sigma, so it
    grows without bound as sigma -> 0 (slope D ln 10 per decade); a single Gaussian collapsed the
    same way has log-likelihood -> -inf."""
    gen = torch.Generator().manual_seed(9)
    D, N = 2, 20
    x = torch.randn(N, D, generator=gen, dtype=DT)
    x_bar = x.mean(0)
    S = (x - x_bar).T @ (x - x_bar) / N
    logits = torch.zeros(2, dtype=DT)  # pi = (1/2, 1/2)
    sigmas = 10.0 ** -torch.arange(1, 9, dtype=DT)  # 1e-1 ... 1e-8
    loglik, loglik_single, bound = [], [], []
    for sigma in sigmas:
        Sig1 = sigma**2 * torch.eye(D, dtype=DT)
        mus, Sigmas = torch.stack([x[0], x_bar]), torch.stack([Sig1, S])
        loglik.append(book_mixture_log_prob(x, logits, mus, Sigmas).sum())
        loglik_single.append(book_gaussian_log_prob(x, x[0], Sig1).sum())
        bound.append(
            math.log(0.5) + book_gaussian_log_prob(x[:1], x[0], Sig1).sum()
            + (math.log(0.5) + book_gaussian_log_prob(x[1:], x_bar, S)).sum()
        )
    loglik, loglik_single, bound = map(torch.stack, (loglik, loglik_single, bound))
    assert (loglik >= bound - 1e-12).all()
    assert (torch.diff(loglik) > 0).all() and loglik[-1] > 10.0 + loglik[0]
    # Once sigma is far below the distance to the other points, each decade adds D ln 10.
    torch.testing.assert_close(torch.diff(loglik)[-3:], torch.full((3,), D * math.log(10), dtype=DT))
    assert (torch.diff(loglik_single) < 0).all() and loglik_single[-1] < -1e10


def test_em_updates():
    """Exercise (ex-ml-em): with responsibilities from the E-step, the M-step formulas for pi_k,
    mu_k, Sigma_k are the stationary point of the expected complete-data log-likelihood (autograd
    gradient zero there), and EM steps never decrease the log-likelihood."""
    gen = torch.Generator().manual_seed(10)
    K, D = 3, 2
    centres = torch.tensor([[-3.0, 0.0], [0.0, 3.0], [3.0, 0.0]], dtype=DT)
    x = torch.cat([sample_gaussian(c, 0.5 * torch.eye(D, dtype=DT), 100, gen) for c in centres])
    logits, mus = torch.zeros(K, dtype=DT), x[torch.tensor([0, 1, 2])].clone()
    Sigmas = torch.stack([torch.eye(D, dtype=DT)] * K)

    def em_step(logits, mus, Sigmas):
        r = torch.softmax(book_component_log_joint(x, logits, mus, Sigmas), -1)  # E-step (N, K)
        Nk = r.sum(0)  # (K,)
        pi = Nk / len(x)
        mus = (r.T @ x) / Nk[:, None]  # (K, D)
        Sigmas = torch.stack([(r[:, k, None] * (x - mus[k])).T @ (x - mus[k]) / Nk[k] for k in range(K)])
        return r, torch.log(pi), mus, Sigmas

    lls = [book_mixture_log_prob(x, logits, mus, Sigmas).sum()]
    for _ in range(15):
        r, logits_new, mus_new, Sigmas_new = em_step(logits, mus, Sigmas)
        # Q(theta) = sum_ik r_ik [log pi_k + log N(x_i; mu_k, Sigma_k)], r held fixed.
        p_mu = mus_new.clone().requires_grad_(True)
        p_S = Sigmas_new.clone().requires_grad_(True)
        Q = (r * (torch.log_softmax(logits_new, -1)
                  + torch.stack([book_gaussian_log_prob(x, p_mu[k], p_S[k]) for k in range(K)], -1))).sum()
        g_mu, g_S = torch.autograd.grad(Q, (p_mu, p_S))
        assert g_mu.abs().max() < 1e-9 and g_S.abs().max() < 1e-9
        # pi maximises sum_k N_k log pi_k on the simplex: the multiplier form N_k / pi_k = N.
        torch.testing.assert_close(r.sum(0) / torch.exp(logits_new), torch.full((K,), float(len(x)), dtype=DT))
        logits, mus, Sigmas = logits_new, mus_new, Sigmas_new
        lls.append(book_mixture_log_prob(x, logits, mus, Sigmas).sum())
    lls = torch.stack(lls)
    assert (torch.diff(lls) > -1e-9).all() and lls[-1] > lls[0] + 10


def test_mle_kl_rate():
    """Eq. (eq-ml-kl-rate): E[KL(p || p_theta_hat)] ~ d / (2N) for a well-specified model. For the
    Gaussian family (d = D + D(D+1)/2) the exact finite-N expectation follows from Wishart moments;
    a Monte Carlo average of the exact KL (torch.distributions) over 4,000 data sets matches it
    within 4 SE, and N E[KL] tends to d/2 with an O(1/N) relative gap."""
    gen = torch.Generator().manual_seed(11)
    D, N, R = 2, 200, 4000
    d = D + D * (D + 1) // 2

    def exact_expected_kl(N):
        # E tr(Sigma_hat^{-1} Sigma) = N D / (N - D - 2); E[(x_bar - mu)^T Sigma_hat^{-1} (x_bar - mu)]
        # = D / (N - D - 2); E log det(Sigma_hat Sigma^{-1}) = sum_i psi((N - i)/2) + D log(2/N).
        elog = sum(special.digamma((N - i) / 2) for i in range(1, D + 1)) + D * math.log(2 / N)
        return 0.5 * ((N + 1) * D / (N - D - 2) - D + elog)

    Sigma = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=DT)
    mu = torch.tensor([0.5, -1.0], dtype=DT)
    x = sample_gaussian(mu, Sigma, R * N, gen).reshape(R, N, D)
    mu_hat = x.mean(1)  # (R, D)
    centred = x - mu_hat[:, None]
    S_hat = centred.transpose(1, 2) @ centred / N  # (R, D, D) the MLE
    kl = kl_divergence(MultivariateNormal(mu, Sigma), MultivariateNormal(mu_hat, S_hat))  # (R,)
    se = kl.std() / math.sqrt(R)
    assert abs(kl.mean() - exact_expected_kl(N)) < 4 * se
    assert abs(kl.mean() - d / (2 * N)) < 0.1 * d / (2 * N)  # rule of thumb: 3.5% bias + 1% SE
    for n in (10**3, 10**4, 10**5):
        rel = exact_expected_kl(n) / (d / (2 * n)) - 1
        assert 0 < rel < 10 / n  # O(1/N) relative correction, vanishing as N grows


# ---------------------------------------------------------------------------------------------
# The curse of dimensionality
# ---------------------------------------------------------------------------------------------


def _empty_cell_fraction(train, test, M, lo, hi):
    """Fraction of test points whose histogram cell (M bins per axis on [lo, hi]^D) holds no
    training point. Points outside the box count as empty."""
    def codes(z):
        idx = np.floor((z - lo) / (hi - lo) * M).astype(np.int64)
        inside = ((idx >= 0) & (idx < M)).all(-1)
        return (np.clip(idx, 0, M - 1) * M ** np.arange(z.shape[1])).sum(-1), inside

    c_train, in_train = codes(train)
    c_test, in_test = codes(test)
    occupied = np.isin(c_test, c_train[in_train])
    return 1.0 - np.mean(occupied & in_test)


def test_histogram_empty_cells_grow_with_dimension():
    """Eq. (eq-ml-empty-cells): the expected fraction of test points in empty histogram cells is
    sum_c P_c (1 - P_c)^N, which for uniform data on [0, 1]^D with M^D cells is (1 - M^{-D})^N.
    Checked by simulation (within 4 SE over 30 repeats); for Gaussian data the fraction grows
    with D from ~0 to ~1 as in the notebook's experiment."""
    rng = np.random.default_rng(12)
    M, N, R = 4, 1000, 30
    for D in (2, 4, 5, 6, 8):
        fr = np.array([_empty_cell_fraction(rng.random((N, D)), rng.random((2000, D)), M, 0.0, 1.0)
                       for _ in range(R)])
        expected = (1.0 - float(M) ** -D) ** N
        se = fr.std(ddof=1) / math.sqrt(R)
        assert abs(fr.mean() - expected) < 4 * se + 1e-3  # +1e-3: SE is ~0 when expected ~ 0 or 1

    fractions = [
        _empty_cell_fraction(rng.standard_normal((N, D)), rng.standard_normal((2000, D)), 10, -4.0, 4.0)
        for D in (1, 2, 3, 4, 6, 8)
    ]
    assert all(b > a for a, b in zip(fractions, fractions[1:]))
    assert fractions[0] < 0.01 and fractions[-1] > 0.95


def test_gaussian_norm_concentrates():
    """Eq. (eq-ml-shell): for x ~ N(0, I_D), E||x||^2 = D, E||x|| = sqrt(2) Gamma((D+1)/2) / Gamma(D/2),
    Var||x|| -> 1/2, so the mass sits on a shell of radius ~sqrt(D) and constant width. Monte Carlo
    (within 4 SE) against the chi distribution's exact moments."""
    gen = torch.Generator().manual_seed(13)
    n = 5000
    rel_widths = []
    for D in (1, 10, 100, 1000):
        r = torch.randn(n, D, generator=gen, dtype=DT).norm(dim=-1)  # (n,)
        assert abs((r**2).mean() - D) < 4 * (r**2).std() / math.sqrt(n)
        e_r = math.sqrt(2) * math.exp(special.gammaln((D + 1) / 2) - special.gammaln(D / 2))
        assert abs(r.mean() - e_r) < 4 * r.std() / math.sqrt(n)
        assert math.isclose(r.std().item() ** 2, stats.chi(D).var(), rel_tol=0.1)  # SE of a var ~ 2%
        rel_widths.append(r.std().item() / math.sqrt(D))
    assert abs(stats.chi(1000).var() - 0.5) < 1e-3
    assert all(b < a for a, b in zip(rel_widths, rel_widths[1:]))
