"""dgm.diffusion (and the conversions of dgm.parameterisations): the forward process against iterated
one-step noising, the posterior against Gaussian conditioning, the ELBO split against a direct Monte Carlo
estimate, the eps-form KL against torch.distributions, Tweedie against autograd scores of the exact mixture,
and the samplers run with the exact (Bayes-optimal) eps of a Gaussian mixture against fresh data."""
import math

import pytest
import torch
from conftest import gen
from torch.distributions import Normal, kl_divergence

from dgm import data
from dgm.diffusion import (
    EpsNetwork,
    alpha_bar,
    ancestral_sample,
    cosine_betas,
    ddim_sample,
    denoising_kl,
    elbo_terms,
    exact_eps_model,
    fit_ddpm,
    l_simple,
    linear_betas,
    posterior,
    q_sample,
    q_step,
    reverse_mean,
    reverse_variance,
)
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.parameterisations import (
    alpha_sigma,
    cosine_log_snr,
    eps_from_score,
    eps_from_v,
    eps_from_x0,
    linear_log_snr,
    score_from_eps,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)

F64 = torch.float64


def random_eps_model(dim, seed):
    """A fixed smooth, deliberately imperfect eps-network (B, D), (B,) -> (B, D) in float64."""
    g = gen(seed)
    W = torch.randn(dim + 1, dim, generator=g, dtype=F64) / 2
    return lambda xt, t: torch.tanh(torch.cat([xt, t[:, None].to(F64) / 10], 1) @ W)


def normal_log_prob(x, mean, var):
    """log N(x; mean, var I) summed over the coordinates, by torch.distributions, shape (B,)."""
    var = torch.as_tensor(var, dtype=x.dtype)
    var = var[:, None] if var.ndim == 1 else var
    return Normal(mean, var.sqrt().expand_as(mean)).log_prob(x).sum(1)


def test_marginal_matches_iterated_forward():
    """Eq. (eq-ddpm-forward), Eq. (eq-ddpm-marginal): iterating q(x_t | x_{t-1}) t times gives the moments of
    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), within 4 SE per coordinate."""
    betas = cosine_betas(12)  # large steps: alpha_bar falls from ~1 to ~0 in 12 steps
    N, x0 = 20_000, torch.tensor([[1.5, -2.0, 0.3]], dtype=F64).expand(20_000, 3)
    x, g = x0, gen(0)
    for step in range(1, len(betas) + 1):
        t = torch.full((N,), step)
        x = q_step(x, t, betas, torch.randn(x.shape, generator=g, dtype=F64))
        if step in (1, 4, 8, 12):
            mean = q_sample(x0[:1], t[:1], betas, torch.zeros(1, 3, dtype=F64))[0]  # sqrt(alpha_bar_t) x_0
            var = q_sample(torch.zeros(1, 3, dtype=F64), t[:1], betas, torch.ones(1, 3, dtype=F64))[0] ** 2
            # SE of a sample mean is sqrt(var / N); of a Gaussian sample variance, var sqrt(2 / N)
            assert torch.all((x.mean(0) - mean).abs() < 4 * (var / N).sqrt()), (step, x.mean(0), mean)
            assert torch.all((x.var(0) - var).abs() < 4 * var * math.sqrt(2 / N)), (step, x.var(0), var)
    # the closed form itself: alpha_bar_t = prod (1 - beta_s), and alpha_bar_T is close to 0 for the cosine schedule
    torch.testing.assert_close(var, 1 - torch.prod(1 - betas).expand(3))


@pytest.mark.parametrize("t", [1, 2, 7, 20])
def test_posterior_matches_gaussian_conditioning(t):
    """Eq. (eq-ddpm-posterior): mean and variance of q(x_{t-1} | x_t, x_0) == Gaussian conditioning of the joint
    (x_{t-1}, x_t) given x_0, built from x_{t-1} ~ q(x_{t-1} | x_0) and one forward step."""
    betas, D = linear_betas(20, beta_1=0.01, beta_T=0.3), 3
    g = gen(t)
    x0, xt = torch.randn(1, D, generator=g, dtype=F64), torch.randn(1, D, generator=g, dtype=F64)
    alpha_bars = torch.cat([torch.ones(1, dtype=F64), torch.cumprod(1 - betas, 0)])  # [s]: alpha_bar_s
    beta = betas[t - 1]
    # joint of (x_{t-1}, x_t) = A (x_{t-1}, e), e ~ N(0, I),
    # with x_{t-1} ~ N(sqrt(alpha_bar_{t-1}) x_0, (1 - alpha_bar_{t-1}) I)
    eye = torch.eye(D, dtype=F64)
    A = torch.cat([torch.cat([eye, 0 * eye], 1), torch.cat([(1 - beta).sqrt() * eye, beta.sqrt() * eye], 1)])
    m = A @ torch.cat([alpha_bars[t - 1].sqrt() * x0[0], torch.zeros(D, dtype=F64)])
    S = A @ torch.block_diag((1 - alpha_bars[t - 1]) * eye, eye) @ A.T
    # condition the first block on the second: m1 + S12 S22^-1 (x_t - m2), S11 - S12 S22^-1 S21
    gain = torch.linalg.solve(S[D:, D:], S[D:, :D]).T
    cond_mean = m[:D] + gain @ (xt[0] - m[D:])
    cond_cov = S[:D, :D] - gain @ S[D:, :D]
    mean, var = posterior(x0, xt, torch.tensor([t]), betas)
    torch.testing.assert_close(mean[0], cond_mean)  # float64 closed forms: default tolerances (~1e-7)
    torch.testing.assert_close(var[0] * eye, cond_cov, atol=1e-12, rtol=1e-7)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_elbo_decomposition(variance):
    """Eq. (eq-ddpm-elbo): reconstruction + prior + denoising KLs == a direct Monte Carlo estimate of
    -E_q[log p(x_{0:T}) - log q(x_{1:T} | x_0)] over whole forward chains, within 4 combined SE."""
    betas, D, N = linear_betas(5, beta_1=0.05, beta_T=0.5), 2, 20_000  # T = 5: alpha_bar_T ~ 0.25, prior term matters
    eps_model = random_eps_model(D, seed=1)
    x0 = torch.tensor([[0.8, -1.2]], dtype=F64).expand(N, D)
    terms = elbo_terms(eps_model, x0, betas, generator=gen(2), variance=variance)
    split = sum(terms.values())  # (N,)
    # direct: sample x_1..x_T from q step by step, add up the log-ratios with torch.distributions
    g, x_prev, log_ratio = gen(3), x0, torch.zeros(N, dtype=F64)
    for step in range(1, len(betas) + 1):
        t, beta = torch.full((N,), step), betas[step - 1]
        x = q_step(x_prev, t, betas, torch.randn(x_prev.shape, generator=g, dtype=F64))
        log_q = normal_log_prob(x, (1 - beta).sqrt() * x_prev, beta)
        log_p = normal_log_prob(x_prev, reverse_mean(x, eps_model(x, t), t, betas),
                                reverse_variance(t, betas, variance))  # at t = 1: the decoder
        log_ratio, x_prev = log_ratio + log_p - log_q, x
    direct = -(log_ratio + normal_log_prob(x_prev, torch.zeros_like(x_prev), 1.0))
    se = math.sqrt(split.var() / N + direct.var() / N)
    assert abs(split.mean() - direct.mean()) < 4 * se, (split.mean(), direct.mean(), se)
    assert all(v.shape == (N,) for v in terms.values())


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_kl_is_weighted_eps_mse(variance):
    """Eq. (eq-ddpm-kl-eps): KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) with mu_theta from eps_hat ==
    beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) ||eps - eps_hat||^2 + const, against torch.distributions."""
    betas, B, D = linear_betas(50, beta_1=1e-3, beta_T=0.2), 64, 3
    g = gen(4)
    x0, eps, eps_hat = (torch.randn(B, D, generator=g, dtype=F64) for _ in range(3))
    t = torch.randint(2, 51, (B,), generator=g)
    xt = q_sample(x0, t, betas, eps)
    mean_q, var_q = posterior(x0, xt, t, betas)
    mean_p, var_p = reverse_mean(xt, eps_hat, t, betas), reverse_variance(t, betas, variance)
    kl = kl_divergence(Normal(mean_q, var_q.sqrt()[:, None].expand_as(mean_q)),
                       Normal(mean_p, var_p.sqrt()[:, None].expand_as(mean_p))).sum(1)
    torch.testing.assert_close(denoising_kl(eps, eps_hat, t, betas, variance), kl)  # float64 algebra: default tol
    # and the KL vanishes exactly when eps_hat = eps with the posterior's own variance
    if variance == "posterior":
        torch.testing.assert_close(denoising_kl(eps, eps, t, betas, variance), torch.zeros(B, dtype=F64))


def test_tweedie_and_conversions():
    """Eq. (eq-vdm-tweedie), Eq. (eq-vdm-parameterisations), Eq. (eq-ddpm-eps-score), Eq. (eq-vdm-v): the exact
    GMM denoiser E[x_0 | x_t] == (x_t + sigma^2 score) / alpha with the score by autograd of log q_t; the
    eps / x_0 / score / v conversions are mutually inverse."""
    gmm = data.two_moons().to(dtype=F64)
    g, B = gen(5), 200
    log_snr = cosine_log_snr(torch.rand(B, generator=g, dtype=F64))  # (B,): one noise level per point
    alpha, sigma = alpha_sigma(log_snr)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones(B, dtype=F64))  # variance preserving
    torch.testing.assert_close(torch.log(alpha**2 / sigma**2), log_snr)
    x0, eps = gmm.sample(B, g), torch.randn(B, 2, generator=g, dtype=F64)
    xt = alpha[:, None] * x0 + sigma[:, None] * eps
    # score by autograd of the exact noised log density: an oracle independent of the mixture's own score code
    z = xt.clone().requires_grad_(True)
    score = torch.autograd.grad(gmm.noised_log_prob(z, alpha, sigma).sum(), z)[0]
    tweedie = (xt + sigma[:, None] ** 2 * score) / alpha[:, None]
    torch.testing.assert_close(gmm.denoise(xt, alpha, sigma), tweedie)  # float64: default tolerances
    torch.testing.assert_close(x0_from_eps(xt, eps_from_score(score, sigma), alpha, sigma), tweedie)
    # round trips (per-example coefficients, and scalars that are not variance preserving)
    for a, s in ((alpha, sigma), (0.5, 2.0)):
        x_t = (a[:, None] if torch.is_tensor(a) else a) * x0 + (s[:, None] if torch.is_tensor(s) else s) * eps
        torch.testing.assert_close(x0_from_eps(x_t, eps, a, s), x0)
        torch.testing.assert_close(eps_from_x0(x_t, x0, a, s), eps)
        torch.testing.assert_close(eps_from_score(score_from_eps(eps, s), s), eps)
        v = v_from_x0_eps(x0, eps, a, s)
        torch.testing.assert_close(x0_from_v(x_t, v, a, s), x0)
        torch.testing.assert_close(eps_from_v(x_t, v, a, s), eps)


def test_ancestral_sampler_with_oracle():
    """Eq. (eq-ddpm-ancestral): Algorithm 2 with the exact eps = -sigma_t grad log q_t of an eight-Gaussian
    mixture (T = 1000, linear betas) gives samples whose energy distance to fresh data is within the floor."""
    gmm = data.eight_gaussians().to(dtype=F64)
    betas, n, g = linear_betas(1000), 1000, gen(6)
    x = ancestral_sample(exact_eps_model(gmm, betas), (n, 2), betas, generator=g, dtype=F64)
    floor = energy_distance_floor(lambda m: gmm.sample(m, g), n, repeats=10)
    # tolerance: the floor's mean plus 4 standard deviations of ONE data-vs-data distance (sd = se sqrt(repeats));
    # a sampler with the eps of the mixture shifted by 0.5 lands ~10x above this limit
    y = gmm.sample(n, g)
    assert energy_distance(x, y) < floor.value + 4 * floor.se * math.sqrt(10)
    # the energy distance is blind to the modes' widths: also E[log p(x)] == E[log p(y)] within 4 combined SE
    lx, ly = gmm.log_prob(x), gmm.log_prob(y)
    assert abs(lx.mean() - ly.mean()) < 4 * math.sqrt(lx.var() / n + ly.var() / n), (lx.mean(), ly.mean())


def test_ddim_sampler_with_oracle():
    """Eq. (eq-ddpm-ancestral) (DDIM variant): the deterministic sampler (eta = 0) with the exact eps on 100 of
    1000 steps reaches the floor; with eta = 1 on all T steps it is ancestral sampling with posterior variance."""
    gmm = data.two_moons().to(dtype=F64)
    betas, n, g = linear_betas(1000), 1000, gen(7)
    eps_model = exact_eps_model(gmm, betas)
    x = ddim_sample(eps_model, (n, 2), betas, n_steps=100, generator=g, dtype=F64)
    floor = energy_distance_floor(lambda m: gmm.sample(m, g), n, repeats=10)
    y = gmm.sample(n, g)
    assert energy_distance(x, y) < floor.value + 4 * floor.se * math.sqrt(10)  # as above
    lx, ly = gmm.log_prob(x), gmm.log_prob(y)
    assert abs(lx.mean() - ly.mean()) < 4 * math.sqrt(lx.var() / n + ly.var() / n), (lx.mean(), ly.mean())
    # identical noise draws (x_T, then z at t = T..2) make the two samplers agree to rounding error
    betas = linear_betas(30, beta_1=1e-3, beta_T=0.3)
    eps_model = random_eps_model(2, seed=8)
    a = ddim_sample(eps_model, (50, 2), betas, n_steps=30, eta=1.0, generator=gen(9), dtype=F64)
    b = ancestral_sample(eps_model, (50, 2), betas, generator=gen(9), variance="posterior", dtype=F64)
    torch.testing.assert_close(a, b)


def test_schedules():
    """Eq. (eq-ddpm-linear-schedule), Eq. (eq-ddpm-cosine-schedule): properties that follow from the definitions.

    Linear: beta_1 and beta_T as stated, equal steps (beta_T - beta_1) / (T - 1). Cosine: the betas are
    ratios beta_t = 1 - f(t) / f(t-1), so the product prod_{s<=t} (1 - beta_s) telescopes to f(t) / f(0) with
    f(t) = cos^2(theta_t), theta_t = pi/2 (t/T + s) / (1 + s): a running product of the betas (Python floats,
    not the code's cumprod) equals that ratio (math.cos) at every step but the clipped last one; the angle
    arccos(sqrt(alpha_bar_t) cos theta_0) then grows by exactly pi / (2 T (1 + s)) per step; the betas increase;
    only beta_T is clipped (f(T) = 0 gives beta_T = 1, which the (0, 1) check rejects without the clip).
    Both: alpha_bar decreases strictly from ~1 to below 1e-4. Continuous log-SNRs: the endpoints, strictly
    decreasing, the linear one with constant slope, the cosine one with alpha = cos(a t + b) (angle linear in t)."""
    T, s = 1000, 0.008
    lin = linear_betas(T)
    assert lin[0].item() == pytest.approx(1e-4) and lin[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(lin.diff(), torch.full((T - 1,), (0.02 - 1e-4) / (T - 1), dtype=F64))
    cos = cosine_betas(T, s=s)
    theta = [0.5 * math.pi * (t / T + s) / (1 + s) for t in range(T + 1)]
    running, products = 1.0, []
    for beta in cos.tolist():
        running *= 1 - beta
        products.append(running)
    ratio = [math.cos(theta[t]) ** 2 / math.cos(theta[0]) ** 2 for t in range(1, T + 1)]
    assert max(abs(p - r) for p, r in zip(products[:-1], ratio[:-1])) < 1e-12
    angle = torch.arccos(torch.tensor(products[:-1], dtype=F64).sqrt() * math.cos(theta[0]))  # theta_t, t = 1..T-1
    torch.testing.assert_close(angle.diff(), torch.full((T - 2,), math.pi / (2 * T * (1 + s)), dtype=F64),
                               rtol=1e-8, atol=0.0)
    assert torch.all(cos.diff() > 0)
    assert cos[-1].item() == 0.999 and bool(torch.all(cos[:-1] < 0.999))  # only the last step is clipped
    with pytest.raises(ValueError, match="0, 1"):
        cosine_betas(T, max_beta=1.0)  # without the clip, beta_T = 1 - f(T) / f(T - 1) = 1
    for betas in (lin, cos):
        alpha_bar_t = alpha_bar(betas)
        # from ~1 (data) to ~0 (noise)
        assert torch.all(alpha_bar_t.diff() < 0) and 0 < alpha_bar_t[-1] < 1e-4 and alpha_bar_t[0] > 0.99
    t = torch.linspace(0, 1, 101, dtype=F64)
    for fn in (linear_log_snr, cosine_log_snr):
        lam = fn(t, log_snr_min=-6.0, log_snr_max=9.0)
        assert lam[0].item() == pytest.approx(9.0) and lam[-1].item() == pytest.approx(-6.0)
        assert torch.all(lam.diff() < 0)
    lam = linear_log_snr(t, log_snr_min=-6.0, log_snr_max=9.0)
    torch.testing.assert_close(lam.diff(), torch.full((100,), -15.0 / 100, dtype=F64))
    # the cosine log-SNR is alpha = cos(a t + b), sigma = sin(a t + b): check with the default endpoints
    alpha, sigma = alpha_sigma(cosine_log_snr(t))
    angle = torch.atan2(sigma, alpha)
    torch.testing.assert_close(angle.diff(), angle.diff()[:1].expand(100))  # linear in t


def test_l_simple_shapes_and_oracle():
    """Eq. (eq-ddpm-lsimple): per-example values (B,); with the exact eps of a Gaussian N(0, s^2 I) the loss is
    the irreducible E||eps - E[eps | x_t]||^2 = D E_t[alpha_bar_t s^2 / (alpha_bar_t s^2 + 1 - alpha_bar_t)]."""
    s, D, N = 0.5, 2, 40_000
    gauss = data.GaussianMixture(torch.zeros(1, D, dtype=F64), s)
    betas = linear_betas(100, beta_1=1e-3, beta_T=0.1)
    loss = l_simple(exact_eps_model(gauss, betas), gauss.sample(N, gen(10)), betas, generator=gen(11))
    assert loss.shape == (N,)
    alpha_bar_t = alpha_bar(betas)
    # the posterior variance of eps, averaged over t
    exact = D * (alpha_bar_t * s**2 / (alpha_bar_t * s**2 + 1 - alpha_bar_t)).mean()
    assert abs(loss.mean() - exact) < 4 * loss.std() / math.sqrt(N), (loss.mean(), exact)


def test_bad_input():
    """Bad input raises ValueError: betas outside (0, 1), T < 1, t outside 1..T or [0, 1], a non-monotone
    continuous schedule, a network output of the wrong shape, an unknown variance, bad DDIM settings."""
    betas = linear_betas(10)
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="0, 1"):
        alpha_bar(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="0, 1"):
        linear_betas(10, beta_1=0.0)
    with pytest.raises(ValueError, match="0, 1"):
        alpha_bar(torch.tensor([0.1, -0.2]))
    with pytest.raises(ValueError, match="positive int"):
        cosine_betas(0)
    with pytest.raises(ValueError, match="1..T"):
        q_sample(x, torch.tensor([0, 1, 2, 3]), betas, x)
    with pytest.raises(ValueError, match="1..T"):
        posterior(x, x, torch.tensor([1, 2, 3, 11]), betas)
    with pytest.raises(ValueError, match="integer"):
        q_sample(x, torch.full((4,), 0.5), betas, x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        linear_log_snr(torch.tensor([0.5, 1.2]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cosine_log_snr(-0.1)
    with pytest.raises(ValueError, match="log_snr_max > log_snr_min"):
        cosine_log_snr(0.5, log_snr_min=3.0, log_snr_max=1.0)
    with pytest.raises(ValueError, match="same shape"):
        ancestral_sample(lambda xt, t: xt.sum(1), (4, 2), betas)
    with pytest.raises(ValueError, match="'beta' or 'posterior'"):
        ancestral_sample(lambda xt, t: xt, (4, 2), betas, variance="learned")
    with pytest.raises(ValueError, match="n_steps"):
        ddim_sample(lambda xt, t: xt, (4, 2), betas, n_steps=11)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(lambda xt, t: xt, (4, 2), betas, n_steps=5, eta=-1.0)
    with pytest.raises(ValueError, match=r"alpha must be a float or have shape \(B,\)=\(4,\)"):
        x0_from_eps(x, x, torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="positive int"):
        ddim_sample(lambda xt, t: xt, (4, 2), betas, n_steps=0)


def test_q_sample_rejects_eps_of_another_shape():
    """Eq. (eq-ddpm-marginal), Eq. (eq-ddpm-forward): eps must have the shape of x_0; noise of shape (B, 1) for
    x_0 of shape (B, 2) (the same noise in every coordinate) is a ValueError naming both shapes, not a broadcast."""
    betas, x0, t = linear_betas(10), torch.zeros(4, 2), torch.tensor([1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"x0 and eps must have the same shape, got x0 \(4, 2\) and eps \(4, 1\)"):
        q_sample(x0, t, betas, torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"x_prev \(4, 2\) and eps \(4, 1\)"):
        q_step(x0, t, betas, torch.zeros(4, 1))


def test_posterior_rejects_x0_and_xt_of_different_shapes():
    """Eq. (eq-ddpm-posterior): x_0 and x_t of different shapes: a ValueError naming both, not torch's RuntimeError."""
    betas, t = linear_betas(10), torch.tensor([2, 3, 4, 5])
    with pytest.raises(ValueError, match=r"x0 \(4, 2\) and xt \(4, 3\)"):
        posterior(torch.zeros(4, 2), torch.zeros(4, 3), t, betas)
    with pytest.raises(ValueError, match=r"x0 \(4, 2\) and xt \(4, 1\)"):  # broadcastable, still an error
        posterior(torch.zeros(4, 2), torch.zeros(4, 1), t, betas)


def test_denoising_kl_rejects_t_1():
    """Eq. (eq-ddpm-kl-eps): the denoising KL is defined for t >= 2 (tilde beta_1 = 0); t = 1 is the reconstruction
    term L_0 of Eq. (eq-ddpm-elbo), so t = 1 is a ValueError instead of inf; t >= 2 stays finite."""
    betas, eps = linear_betas(10), torch.randn(3, 2, generator=gen(0))
    with pytest.raises(ValueError, match="t >= 2"):
        denoising_kl(eps, eps, torch.tensor([1, 2, 3]), betas, variance="posterior")
    with pytest.raises(ValueError, match="t >= 2"):
        denoising_kl(eps, eps, torch.tensor([3, 1, 2]), betas)
    assert torch.all(torch.isfinite(denoising_kl(eps, 0 * eps, torch.tensor([2, 5, 10]), betas, "posterior")))


@pytest.mark.parametrize("use", ["l_simple", "elbo_terms", "ancestral_sample", "ddim_sample", "reverse_mean",
                                 "denoising_kl"])
def test_eps_output_must_have_the_shape_of_x(use):
    """Eq. (eq-ddpm-lsimple), Eq. (eq-ddpm-elbo), Eq. (eq-ddpm-ancestral): an eps prediction of shape (B, 1) for x of
    shape (B, 2) would broadcast; every loss and sampler raises a ValueError naming both shapes instead."""
    betas, x = linear_betas(10), torch.zeros(4, 2)

    def bad(xt, t):
        return xt[:, :1]  # broadcastable against xt, so only an explicit check catches it
    calls = {"l_simple": lambda: l_simple(bad, x, betas),
             "elbo_terms": lambda: elbo_terms(bad, x, betas),
             "ancestral_sample": lambda: ancestral_sample(bad, (4, 2), betas),
             "ddim_sample": lambda: ddim_sample(bad, (4, 2), betas, 5),
             "reverse_mean": lambda: reverse_mean(x, x[:, :1], torch.full((4,), 3), betas),
             "denoising_kl": lambda: denoising_kl(x, x[:, :1], torch.full((4,), 3), betas)}
    with pytest.raises(ValueError, match=r"\(4, 1\) and .* \(4, 2\)|\(4, 2\) and .* \(4, 1\)"):
        calls[use]()


def test_fit_ddpm_recipe():
    """Eq. (eq-ddpm-lsimple): the shared recipe trains an EpsNetwork on a Gaussian N(0, 0.5^2 I) towards the loss
    floor D E_t[alpha_bar_t s^2 / (alpha_bar_t s^2 + 1 - alpha_bar_t)] of the exact eps (as in
    test_l_simple_shapes_and_oracle): after 300 steps its mean loss over the last 100 steps is within 10 %."""
    torch.manual_seed(0)
    s, betas, g = 0.5, linear_betas(100, beta_1=1e-3, beta_T=0.1), gen(12)
    net = EpsNetwork(2, T=100, hidden=64)
    history = fit_ddpm(net, lambda n: s * torch.randn(n, 2, generator=g), betas, n_steps=300, lr=3e-3, generator=g,
                       progress=False)
    alpha_bar_t = alpha_bar(betas)
    floor = (2 * (alpha_bar_t * s**2 / (alpha_bar_t * s**2 + 1 - alpha_bar_t)).mean()).item()
    assert len(history) == 300
    assert abs(sum(history[-100:]) / 100 - floor) < 0.1 * floor, (sum(history[-100:]) / 100, floor)
