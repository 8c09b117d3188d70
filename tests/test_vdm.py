"""dgm.vdm: the continuous-time VDM bound, checked against torch.distributions, Gaussian conditioning,
exact Gaussian-mixture denoisers, exact discrete likelihoods and Monte Carlo within its standard error."""
import itertools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.data import GaussianMixture, eight_gaussians
from dgm.diffusion import alpha_sigma, cosine_log_snr, linear_log_snr
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.utils import Estimate
from dgm.digits import pixel_log_marginals
from dgm.vdm import (VDM, LearnedSchedule, ancestral_sample, decoder_log_probs, discrete_diffusion_loss,
                     factorised_denoiser, grid_values, prior_term, q_posterior,
                     reconstruction_term, to_grid, vdm_terms)
from conftest import gen

LAM_MIN, LAM_MAX = -6.0, 8.0  # toy log-SNR range: noise from almost pure to well below the mixture's 0.2 std


def exact_denoiser(p: GaussianMixture):
    """denoise_fn(z_t, lambda) = E[x | z_t] of the mixture p (its exact oracle)."""
    return lambda zt, log_snr: p.denoise(zt, *alpha_sigma(log_snr))


def toy_schedule(log_snr_fn):
    """A fixed schedule with the toy endpoints."""
    return lambda t: log_snr_fn(t, log_snr_min=LAM_MIN, log_snr_max=LAM_MAX)


def random_schedule(seed=0, gamma_min=-LAM_MAX, gamma_max=-LAM_MIN):
    """A LearnedSchedule (float64) with random shape weights, far from linear (steep sigmoids dominate)."""
    schedule = LearnedSchedule(gamma_min, gamma_max, n_features=16).double()
    g = gen(seed)
    with torch.no_grad():
        schedule.w1.fill_(0.2)
        for q, scale in ((schedule.w2, 8.0), (schedule.b, 4.0), (schedule.w3, 3.0)):
            q.copy_(scale * torch.randn(q.shape, generator=g, dtype=q.dtype))
    return schedule


def test_snr_form_equals_kl_sum():
    """Eq. (eq-vdm-discrete-loss): sum_i KL(q(z_s|z_t,x) || q(z_s|z_t,x_hat)) == the SNR-difference form.

    The posterior q(z_s | z_t, x) against Gaussian conditioning of the joint (z_s, z_t) given x (closed
    form); each step's KL against torch.distributions; float64, so agreement to 1e-9 relative."""
    B, D, T = 6, 3, 8
    x0 = torch.randn(B, D, generator=gen(0), dtype=torch.float64)
    eps = torch.randn(B, D, generator=gen(1), dtype=torch.float64)
    W = torch.randn(D, D, generator=gen(2), dtype=torch.float64)
    denoise = lambda zt, log_snr: torch.tanh(zt @ W) * (1 + log_snr[:, None] / 10)  # any denoiser will do  # noqa: E731
    schedule = toy_schedule(cosine_log_snr)
    kl_sum, snr_form = torch.zeros(B, dtype=torch.float64), torch.zeros(B, dtype=torch.float64)
    for i in range(1, T + 1):
        lam_s, lam_t = (schedule(torch.tensor(k / T, dtype=torch.float64)) for k in (i - 1, i))
        (a_s, s_s), (a_t, s_t) = alpha_sigma(lam_s), alpha_sigma(lam_t)
        zt = a_t * x0 + s_t * eps
        # the joint: z_s = a_s x + s_s e1, z_t = (a_t/a_s) z_s + sqrt(s_t^2 - (a_t/a_s)^2 s_s^2) e2
        cov_st, var_t = (a_t / a_s) * s_s**2, s_t**2
        cond_mean = lambda x: a_s * x + cov_st / var_t * (zt - a_t * x)  # noqa: E731
        cond_var = s_s**2 - cov_st**2 / var_t
        mean, var = q_posterior(x0, zt, lam_s, lam_t)
        torch.testing.assert_close(mean, cond_mean(x0), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(var, cond_var.expand(B, 1), rtol=1e-9, atol=1e-12)
        x_hat = denoise(zt, lam_t.expand(B))
        std = cond_var.sqrt()
        kl_sum += kl_divergence(Normal(cond_mean(x0), std), Normal(cond_mean(x_hat), std)).sum(1)
        snr_form += discrete_diffusion_loss(x0, denoise, schedule, T, i=torch.full((B,), i), eps=eps) / T
    torch.testing.assert_close(snr_form, kl_sum, rtol=1e-9, atol=1e-12)


def test_discrete_loss_tends_to_continuous():
    """Eq. (eq-vdm-continuous-loss): with the exact denoiser of a mixture, L_T falls towards L_inf as T grows.

    Independent MC estimates (50 000 draws each): L_T - L_inf is positive and shrinks (T = 1, 4), and
    L_1000 agrees with L_inf within 4 SE. With common random numbers (the same i and eps, t = i/T) a
    linear log-SNR makes the ratio exact: T (SNR(s) - SNR(t)) / (-SNR'(t)) = expm1(d) / d with
    d = (lambda_max - lambda_min) / T, which tends to 1 (float64, 1e-9 relative)."""
    p = eight_gaussians().to(dtype=torch.float64)
    x0 = p.sample(50_000, gen(0))
    denoise, schedule = exact_denoiser(p), toy_schedule(linear_log_snr)
    L_inf = Estimate(vdm_terms(x0, denoise, schedule, gen(1), levels=None)["diffusion"])
    L = {T: Estimate(discrete_diffusion_loss(x0, denoise, schedule, T, gen(2 + T))) for T in (1, 4, 1000)}
    gap = {T: (L[T].value - L_inf.value, (L[T].se**2 + L_inf.se**2) ** 0.5) for T in L}
    assert gap[1][0] > gap[4][0] + 4 * (gap[1][1] + gap[4][1]) > 0, gap
    assert gap[4][0] > 4 * gap[4][1], gap
    assert abs(gap[1000][0]) < 4 * gap[1000][1], gap
    for T in (4, 1000):
        i = torch.randint(1, T + 1, (1000,), generator=gen(5))
        eps = torch.randn(1000, 2, generator=gen(6), dtype=torch.float64)
        discrete = discrete_diffusion_loss(x0[:1000], denoise, schedule, T, i=i, eps=eps)
        continuous = vdm_terms(x0[:1000], denoise, schedule, levels=None, t=i.double() / T, eps=eps)["diffusion"]
        d = (LAM_MAX - LAM_MIN) / T
        torch.testing.assert_close(discrete, continuous * math.expm1(d) / d, rtol=1e-9, atol=1e-12)


def test_schedule_invariance():
    """Thm. (thm-vdm-invariance): schedules with the same endpoints give the same continuous loss.

    Linear, cosine and a random monotone LearnedSchedule, all from lambda = 8 to -6, with the exact
    mixture denoiser: the three losses agree within 4 SE (MC over 40 000 draws each), while their
    integrands at the same t (here t = 0.3) differ by many SE."""
    p = eight_gaussians().to(dtype=torch.float64)
    x0 = p.sample(40_000, gen(0))
    denoise = exact_denoiser(p)
    learned = random_schedule()
    schedules = {"linear": toy_schedule(linear_log_snr), "cosine": toy_schedule(cosine_log_snr),
                 "learned": learned.log_snr}
    loss = {k: Estimate(vdm_terms(x0, denoise, f, gen(1 + i), levels=None)["diffusion"])
            for i, (k, f) in enumerate(schedules.items())}
    for a, b in itertools.combinations(loss, 2):
        assert abs(loss[a].value - loss[b].value) < 4 * (loss[a].se**2 + loss[b].se**2) ** 0.5, loss
    t = torch.full((10_000,), 0.3, dtype=torch.float64)
    at_t = {k: Estimate(vdm_terms(x0[:10_000], denoise, f, gen(9), levels=None, t=t)["diffusion"])
            for k, f in schedules.items()}
    for a, b in itertools.combinations(at_t, 2):
        assert abs(at_t[a].value - at_t[b].value) > 10 * (at_t[a].se**2 + at_t[b].se**2) ** 0.5, at_t


def test_prior_and_reconstruction_terms():
    """Eq. (eq-vdm-prior) vs torch's Gaussian KL; Eq. (eq-vdm-reconstruction): the decoder is Bayes' rule over the grid.

    Decoder probabilities sum to 1 over the 17 values and equal N(z_0; alpha_0 v, sigma_0^2) normalised
    over v (torch Normal); -log p(x | z_0) is the sum of those log-probabilities; float64 throughout."""
    levels, B, D = 17, 5, 4
    x0 = to_grid(torch.randint(0, levels, (B, D), generator=gen(0)), levels).double()
    for lam in (-2.0, 3.0, 9.0):
        a, s = alpha_sigma(torch.tensor(lam, dtype=torch.float64))
        torch.testing.assert_close(prior_term(x0, lam), kl_divergence(Normal(a * x0, s), Normal(0.0, 1.0)).sum(1))
        z0 = a * x0 + s * torch.randn(B, D, generator=gen(1), dtype=torch.float64)
        log_p = decoder_log_probs(z0, lam, levels)  # (B, D, levels)
        torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(B, D, dtype=torch.float64))
        joint = Normal(a * grid_values(levels, dtype=torch.float64), s).log_prob(z0[..., None])  # (B, D, levels)
        torch.testing.assert_close(log_p, joint - torch.logsumexp(joint, -1, keepdim=True))
        k = torch.round((x0 + 1) * (levels - 1) / 2).long()
        torch.testing.assert_close(reconstruction_term(x0, z0, lam, levels),
                                   -log_p.gather(-1, k[..., None]).sum((1, 2)))
        # continuous data: a Gaussian decoder N(x; z_0 / alpha_0, sigma_0^2 / alpha_0^2)
        torch.testing.assert_close(reconstruction_term(x0, z0, lam, None),
                                   -Normal(z0 / a, s / a).log_prob(x0).sum(1))


def test_learned_schedule_is_monotone():
    """Eq. (eq-vdm-snr): the learned gamma(t) = -log SNR(t) increases from gamma_min to gamma_max exactly.

    Random non-negative-weight networks: gamma on a 2001-point grid increases, its analytic slope is
    positive and equals the autograd derivative (float64, 1e-6 relative), and the endpoints are the parameters."""
    for seed in range(3):
        schedule = random_schedule(seed, gamma_min=-13.3, gamma_max=5.0)
        t = torch.linspace(0, 1, 2001, dtype=torch.float64, requires_grad=True)
        gamma = schedule(t)
        assert bool(torch.all(gamma[1:] > gamma[:-1]))
        torch.testing.assert_close(gamma[[0, -1]].detach(), torch.tensor([-13.3, 5.0], dtype=torch.float64))
        (autograd_slope,) = torch.autograd.grad(gamma.sum(), t)
        s, ds = schedule.shape(t.detach())
        # slopes up to ~1e3 from steep sigmoids: float64 rounding, amplified, stays below 1e-6 relative
        torch.testing.assert_close((5.0 + 13.3) * ds.detach(), autograd_slope, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(schedule.log_snr(t.detach()), -gamma)


def test_bound_is_tight_with_the_exact_denoiser():
    """Eq. (eq-vdm-bpd): with the exact denoiser of independent grid pixels, the three terms add up to -log Q(x).

    Q: 3 independent pixels on 5 levels with random probabilities; factorised_denoiser is E_Q[x | z_t],
    checked against a GaussianMixture with one (tiny-variance) component per grid point. The bound of
    each x agrees with the exact -log Q(x) within 4 SE (40 000 MC draws of (t, eps)) plus 0.01 nats
    for the truncated ends (log-SNR in [-10, 16])."""
    levels, D = 5, 3
    log_q = torch.log_softmax(torch.randn(D, levels, generator=gen(0), dtype=torch.float64), -1)
    v = grid_values(levels, dtype=torch.float64)
    # oracle: Q as a mixture of levels^D near-point masses
    corners = torch.tensor(list(itertools.product(range(levels), repeat=D)))  # (levels^D, D)
    mixture = GaussianMixture(v[corners], 1e-9, log_q.gather(1, corners.T).sum(0).exp())
    zt = torch.randn(7, D, generator=gen(1), dtype=torch.float64)
    lam = torch.linspace(-4, 8, 7, dtype=torch.float64)
    torch.testing.assert_close(factorised_denoiser(zt, lam, log_q), mixture.denoise(zt, *alpha_sigma(lam)))
    schedule = lambda t: linear_log_snr(t, log_snr_min=-10.0, log_snr_max=16.0)  # noqa: E731
    denoise = lambda zt, log_snr: factorised_denoiser(zt, log_snr, log_q)  # noqa: E731
    for k, x_int in enumerate(torch.tensor([[0, 2, 4], [1, 1, 3], [4, 0, 2]])):
        x0 = v[x_int].expand(40_000, D)
        bound = Estimate(sum(vdm_terms(x0, denoise, schedule, gen(10 + k), levels=levels).values()))
        exact = -log_q.gather(1, x_int[:, None]).sum().item()
        assert abs(bound.value - exact) < 4 * bound.se + 0.01, (bound, exact)


def test_model_terms_and_variance_gradient():
    """Eq. (eq-vdm-continuous-loss), Thm. (thm-vdm-invariance): VDM.terms (eps form) == vdm_terms (x form).

    Same seed, same draws, float64: the three terms agree to 1e-8 relative. The schedule's shape
    parameters receive the gradient of mean(L_diffusion^2) (autograd of the squared x-form term, no
    hook), the network and the endpoints the gradient of the ELBO itself."""
    torch.manual_seed(0)
    x = torch.randint(0, 17, (32, 64), generator=gen(0))
    model = VDM(hidden=32, n_hidden=1, log_probs=pixel_log_marginals(x)).double()
    with torch.no_grad():
        model.net.net[-1].weight.normal_(0, 0.1, generator=gen(1))  # a non-zero correction
    ours = model.terms(x, gen(2))
    reference = vdm_terms(to_grid(x).double(), model.denoise, model.schedule.log_snr, gen(2))
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-8, atol=1e-8)
    shape_params = [model.schedule.w2, model.schedule.w3]
    others = [model.schedule.gamma_min, model.net.net[-1].bias]
    grads = torch.autograd.grad(model.loss(x, gen(2)).mean(), shape_params + others)
    variance_grads = torch.autograd.grad((reference["diffusion"] ** 2).mean(), shape_params, retain_graph=True)
    elbo_grads = torch.autograd.grad(sum(reference.values()).mean(), others)
    for got, want in zip(grads, variance_grads + elbo_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_ancestral_sampler_with_exact_denoiser():
    """Eq. (eq-vdm-discrete-loss): p(z_s | z_t) = q(z_s | z_t, x_hat) with the exact denoiser reproduces the data.

    2000 samples of z_0 for eight Gaussians (100 steps, log-SNR 8 to -6) against its exact law, the
    mixture noised to lambda = 8: the mean log-density of the samples equals that of fresh draws
    within 4 SE, and their energy distance is below the floor's mean + 4 floor SDs (data vs data)."""
    p = eight_gaussians().to(dtype=torch.float64)
    z0 = ancestral_sample(exact_denoiser(p), toy_schedule(linear_log_snr), (2000, 2), 100, gen(0))
    target = p.noised(*alpha_sigma(torch.tensor(LAM_MAX, dtype=torch.float64)))  # the law of z_0
    g = gen(1)
    ours, fresh = Estimate(target.log_prob(z0)), Estimate(target.log_prob(target.sample(2000, g)))
    assert abs(ours.value - fresh.value) < 4 * (ours.se**2 + fresh.se**2) ** 0.5, (ours, fresh)
    floor = energy_distance_floor(lambda n: target.sample(n, g), 2000, repeats=10)
    sd = floor.se * 10**0.5  # the spread of one data-vs-data distance
    assert energy_distance(z0, target.sample(2000, g)) < floor.value + 4 * sd, floor


def test_bad_input():
    """Eq. (eq-vdm-snr), Eq. (eq-vdm-reconstruction): bad input raises ValueError naming what was expected.

    t outside [0, 1], a rising log-SNR, T < 1, gamma_min >= gamma_max, data off the grid, a denoiser
    of the wrong shape, pixels outside 0..levels-1, fewer than 2 levels."""
    p = eight_gaussians()
    x0 = p.sample(8, gen(0))
    denoise, schedule = exact_denoiser(p), toy_schedule(linear_log_snr)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vdm_terms(x0, denoise, schedule, levels=None, t=torch.full((8,), 1.5))
    with pytest.raises(ValueError, match="decrease"):
        vdm_terms(x0, denoise, lambda t: -schedule(t), levels=None)
    with pytest.raises(ValueError, match="T must"):
        discrete_diffusion_loss(x0, denoise, schedule, T=0)
    with pytest.raises(ValueError, match="gamma_max > gamma_min"):
        LearnedSchedule(gamma_min=5.0, gamma_max=-13.3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LearnedSchedule()(torch.tensor([-0.1, 0.5]))
    with pytest.raises(ValueError, match="grid"):
        reconstruction_term(x0, x0, 5.0, levels=17)
    with pytest.raises(ValueError, match="shape of z_t"):
        vdm_terms(x0, lambda zt, lam: zt[:, :1], schedule, levels=None)
    with pytest.raises(ValueError, match="0..16"):
        to_grid(torch.tensor([[0, 17]]))
    with pytest.raises(ValueError, match="levels"):
        grid_values(1)
