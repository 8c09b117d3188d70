"""dgm.vdm: the continuous-time VDM bound, checked against torch.distributions, Gaussian conditioning,
exact Gaussian-mixture denoisers, exact discrete likelihoods and Monte Carlo within its standard error."""
import itertools
import math

import pytest
import torch
from conftest import gen
from torch.distributions import Normal, kl_divergence

from dgm.data import GaussianMixture, eight_gaussians
from dgm.digits import pixel_log_marginals
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.parameterisations import LearnedSchedule, alpha_sigma, cosine_log_snr, grid_values, linear_log_snr, to_grid
from dgm.utils import Estimate
from dgm.vdm import (
    VDM,
    ancestral_sample,
    decoder_log_probs,
    digits_vdm,
    discrete_diffusion_loss,
    factorised_denoiser,
    fit_vdm,
    prior_term,
    q_posterior,
    reconstruction_term,
    vdm_terms,
)

LAM_MIN, LAM_MAX = -6.0, 8.0  # toy log-SNR range: noise from almost pure to well below the mixture's 0.2 std


def exact_denoiser(p: GaussianMixture):
    """denoise_fn(x_t, lambda) = E[x_0 | x_t] of the mixture p (its exact oracle)."""
    return lambda xt, log_snr: p.denoise(xt, *alpha_sigma(log_snr))


def toy_schedule(log_snr_fn):
    """A fixed schedule with the toy endpoints."""
    return lambda t: log_snr_fn(t, log_snr_min=LAM_MIN, log_snr_max=LAM_MAX)


def random_schedule(seed=0, log_snr_min=LAM_MIN, log_snr_max=LAM_MAX):
    """A LearnedSchedule (float64) with random shape weights, far from linear (steep sigmoids dominate)."""
    schedule = LearnedSchedule(log_snr_min, log_snr_max, n_features=16).double()
    g = gen(seed)
    with torch.no_grad():
        schedule.w1.fill_(0.2)
        for q, scale in ((schedule.w2, 8.0), (schedule.b, 4.0), (schedule.w3, 3.0)):
            q.copy_(scale * torch.randn(q.shape, generator=g, dtype=q.dtype))
    return schedule


def test_snr_form_equals_kl_sum():
    """Eq. (eq-vdm-discrete-loss): sum_i KL(q(x_s|x_t,x_0) || q(x_s|x_t,x_hat)) == the SNR-difference form.

    The posterior q(x_s | x_t, x_0) against Gaussian conditioning of the joint (x_s, x_t) given x_0 (closed
    form); each step's KL against torch.distributions; float64, so agreement to 1e-9 relative."""
    B, D, T = 6, 3, 8
    x0 = torch.randn(B, D, generator=gen(0), dtype=torch.float64)
    eps = torch.randn(B, D, generator=gen(1), dtype=torch.float64)
    W = torch.randn(D, D, generator=gen(2), dtype=torch.float64)

    def denoise(xt, log_snr):  # any denoiser will do
        return torch.tanh(xt @ W) * (1 + log_snr[:, None] / 10)

    schedule = toy_schedule(cosine_log_snr)
    kl_sum, snr_form = torch.zeros(B, dtype=torch.float64), torch.zeros(B, dtype=torch.float64)
    for i in range(1, T + 1):
        lam_s, lam_t = (schedule(torch.tensor(k / T, dtype=torch.float64)) for k in (i - 1, i))
        (a_s, s_s), (a_t, s_t) = alpha_sigma(lam_s), alpha_sigma(lam_t)
        xt = a_t * x0 + s_t * eps
        # the joint: x_s = a_s x_0 + s_s e1, x_t = (a_t/a_s) x_s + sqrt(s_t^2 - (a_t/a_s)^2 s_s^2) e2;
        # conditioning x_s on x_t: mean a_s x + cov_st / var_t (x_t - a_t x), at x = x_0 and at x = x_hat
        cov_st, var_t = (a_t / a_s) * s_s**2, s_t**2
        x_hat = denoise(xt, lam_t.expand(B))
        cond_mean, cond_mean_hat = (a_s * x + cov_st / var_t * (xt - a_t * x) for x in (x0, x_hat))
        cond_var = s_s**2 - cov_st**2 / var_t
        mean, var = q_posterior(x0, xt, lam_s, lam_t)
        torch.testing.assert_close(mean, cond_mean, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(var, cond_var.expand(B, 1), rtol=1e-9, atol=1e-12)
        std = cond_var.sqrt()
        kl_sum += kl_divergence(Normal(cond_mean, std), Normal(cond_mean_hat, std)).sum(1)
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
                 "learned": learned}
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

    Decoder probabilities sum to 1 over the 17 values and equal N(x0_tilde; alpha_0 v, sigma_0^2) normalised
    over v (torch Normal); -log p(x_0 | x0_tilde) is the sum of those log-probabilities; float64 throughout."""
    levels, B, D = 17, 5, 4
    x0 = to_grid(torch.randint(0, levels, (B, D), generator=gen(0)), levels).double()
    for lam in (-2.0, 3.0, 9.0):
        a, s = alpha_sigma(torch.tensor(lam, dtype=torch.float64))
        torch.testing.assert_close(prior_term(x0, lam), kl_divergence(Normal(a * x0, s), Normal(0.0, 1.0)).sum(1))
        x0_tilde = a * x0 + s * torch.randn(B, D, generator=gen(1), dtype=torch.float64)
        log_p = decoder_log_probs(x0_tilde, lam, levels)  # (B, D, levels)
        torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(B, D, dtype=torch.float64))
        joint = Normal(a * grid_values(levels, dtype=torch.float64), s).log_prob(x0_tilde[..., None])  # (B, D, levels)
        torch.testing.assert_close(log_p, joint - torch.logsumexp(joint, -1, keepdim=True))
        k = torch.round((x0 + 1) * (levels - 1) / 2).long()
        torch.testing.assert_close(reconstruction_term(x0, x0_tilde, lam, levels),
                                   -log_p.gather(-1, k[..., None]).sum((1, 2)))
        # continuous data: a Gaussian decoder N(x_0; x0_tilde / alpha_0, sigma_0^2 / alpha_0^2)
        torch.testing.assert_close(reconstruction_term(x0, x0_tilde, lam, None),
                                   -Normal(x0_tilde / a, s / a).log_prob(x0).sum(1))


def test_learned_schedule_is_monotone():
    """Eq. (eq-vdm-learned-schedule): the learned lambda(t) = log SNR(t) falls from log_snr_max to log_snr_min exactly.

    Random non-negative-weight networks: lambda on a 2001-point grid decreases, its analytic slope is
    negative and equals the autograd derivative (float64, 1e-6 relative), and the endpoints are the parameters."""
    for seed in range(3):
        schedule = random_schedule(seed, log_snr_min=-5.0, log_snr_max=13.3)
        t = torch.linspace(0, 1, 2001, dtype=torch.float64, requires_grad=True)
        log_snr = schedule(t)
        assert bool(torch.all(log_snr[1:] < log_snr[:-1]))
        torch.testing.assert_close(log_snr[[0, -1]].detach(), torch.tensor([13.3, -5.0], dtype=torch.float64))
        (autograd_slope,) = torch.autograd.grad(log_snr.sum(), t)
        s, ds = schedule.shape(t.detach())
        assert bool(torch.all(ds > 0))
        # slopes up to ~1e3 from steep sigmoids: float64 rounding, amplified, stays below 1e-6 relative
        torch.testing.assert_close((-5.0 - 13.3) * ds.detach(), autograd_slope, rtol=1e-6, atol=1e-9)


def test_bound_is_tight_with_the_exact_denoiser():
    """Eq. (eq-vdm-bpd), Prop. (prop-vdm-tight): with the exact denoiser of independent grid pixels, the three
    terms add up to -log Q(x_0) up to the truncation of the log-SNR to [lambda_min, lambda_max] = [-10, 16].

    Q: 3 independent pixels on 5 levels with random probabilities; factorised_denoiser is E_Q[x_0 | x_t],
    checked against a GaussianMixture with one (tiny-variance) component per grid point.
    The truncation error, per x_0: for discrete data -log Q(x_0) = 1/2 int_0^inf mmse(x_0, v) dv with
    mmse(x_0, v) = E_eps ||x_0 - E[x_0 | x_v]||^2 (the pointwise I-MMSE identity, Kong et al. 2023), so
    bound - (-log Q) = prior + reconstruction - 1/2 int_0^SNR_min mmse - 1/2 int_SNR_max^inf mmse. At
    SNR_max = e^16 the decoder and the upper tail are below 1e-100 (grid spacing 0.5 against noise 3e-4);
    at SNR_min = e^-10 the prior is 1/2 SNR_min ||x_0||^2 and the lower tail 1/2 SNR_min ||x_0 - E_Q[x_0]||^2,
    each up to O(SNR_min^2) ~ 1e-9. So (i) a deterministic quadrature of the diffusion term (Simpson in lambda,
    521 points; a 401-point rule in each pixel's eps, the pixels being independent) plus the prior must equal
    -log Q(x_0) + 1/2 SNR_min (||x_0||^2 - ||x_0 - E_Q x_0||^2) within 1e-7 (the whole offset is below 1e-4);
    (ii) the Monte Carlo bound of vdm_terms (40 000 draws of (t, eps)) must agree with that quadrature
    within 4 SE: nothing else is left to allow for."""
    levels, D = 5, 3
    F64 = torch.float64
    log_q = torch.log_softmax(torch.randn(D, levels, generator=gen(0), dtype=F64), -1)
    v = grid_values(levels, dtype=F64)
    # oracle: Q as a mixture of levels^D near-point masses
    corners = torch.tensor(list(itertools.product(range(levels), repeat=D)))  # (levels^D, D)
    mixture = GaussianMixture(v[corners], 1e-9, log_q.gather(1, corners.T).sum(0).exp())
    xt = torch.randn(7, D, generator=gen(1), dtype=F64)
    lam = torch.linspace(-4, 8, 7, dtype=F64)
    torch.testing.assert_close(factorised_denoiser(xt, lam, log_q), mixture.denoise(xt, *alpha_sigma(lam)))
    lam_min, lam_max = -10.0, 16.0

    def schedule(t):
        return linear_log_snr(t, log_snr_min=lam_min, log_snr_max=lam_max)

    def denoise(xt, log_snr):
        return factorised_denoiser(xt, log_snr, log_q)

    lams, eps_grid = torch.linspace(lam_min, lam_max, 521, dtype=F64), torch.linspace(-10, 10, 401, dtype=F64)
    eps_weights = Normal(0.0, 1.0).log_prob(eps_grid).exp() * (eps_grid[1] - eps_grid[0])  # (401,)
    simpson = torch.ones(521, dtype=F64)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    simpson *= (lams[1] - lams[0]) / 3
    mean_q = (log_q.exp() * v).sum(1)  # E_Q[x_0], (D,)
    for k, x_int in enumerate(torch.tensor([[0, 2, 4], [1, 1, 3], [4, 0, 2]])):
        x0, exact = v[x_int], -log_q.gather(1, x_int[:, None]).sum().item()
        # (i) 1/2 int e^lambda E||x_0 - x_hat||^2 d lambda, column d of the eps grid is pixel d's noise
        integrand = []
        for lam in lams:
            a, s = alpha_sigma(lam)
            x_hat = denoise(a * x0 + s * eps_grid[:, None], lam.expand(len(eps_grid)))  # (401, D)
            integrand.append(0.5 * lam.exp() * (eps_weights[:, None] * (x0 - x_hat) ** 2).sum())
        quadrature = (simpson * torch.stack(integrand)).sum().item() + prior_term(x0[None], lam_min).item()
        offset = 0.5 * math.exp(lam_min) * ((x0**2).sum() - ((x0 - mean_q) ** 2).sum()).item()
        assert abs(quadrature - (exact + offset)) < 1e-7, (quadrature, exact, offset)
        assert abs(quadrature - exact) < 1e-4
        # (ii) the Monte Carlo estimator of the code against the quadrature, within 4 SE
        bound = Estimate(sum(vdm_terms(x0.expand(40_000, D), denoise, schedule, gen(10 + k), levels=levels).values()))
        assert abs(bound.value - quadrature) < 4 * bound.se, (bound, quadrature)


def test_model_terms_and_variance_gradient():
    """Eq. (eq-vdm-continuous-loss), Eq. (eq-vdm-prior), Eq. (eq-vdm-reconstruction), Thm. (thm-vdm-invariance).

    VDM.terms (eps form, analytic schedule slope) against an oracle written here from the page: the same
    draws (one uniform u, then eps, as VDM.terms takes them from the generator), the diffusion term in x form
    -1/2 lambda'(t) e^lambda ||x_0 - x_hat||^2 with lambda'(t) by central finite differences (h = 1e-6, float64:
    error ~1e-10 relative), the prior by torch.distributions' Gaussian KL, the reconstruction by Bayes' rule
    over the grid with torch Normal densities; agreement to 1e-6 relative. Then the gradients: the schedule's
    shape parameters receive the gradient of mean(L_diffusion^2) (autograd of the squared x-form term of
    vdm_terms, no hook), the network and the endpoints the gradient of the ELBO itself."""
    F64 = torch.float64
    torch.manual_seed(0)
    B = 32
    x = torch.randint(0, 17, (B, 64), generator=gen(0))
    # log_snr_max = 6: a reconstruction term of about one nat per pixel, so the oracle checks it too
    model = VDM(hidden=32, n_hidden=1, log_probs=pixel_log_marginals(x), log_snr_max=6.0).double()
    with torch.no_grad():
        model.net.net[-1].weight.normal_(0, 0.1, generator=gen(1))  # a non-zero correction
    ours = {k: v.detach() for k, v in model.terms(x, gen(2)).items()}
    # the oracle
    g = gen(2)
    u = torch.rand((), generator=g)
    t = ((u + torch.arange(B) / B) % 1.0).to(F64)
    eps = torch.randn(B, 64, generator=g).to(F64)
    x0 = x.to(F64) / 8 - 1  # the grid -1, -0.875, ..., 1
    grid = torch.linspace(-1, 1, 17, dtype=F64)
    with torch.no_grad():
        lam, ends = model.schedule(t), model.schedule(torch.tensor([0.0, 1.0], dtype=F64))
        h = 1e-6
        t_up, t_down = (t + h).clamp(max=1.0), (t - h).clamp(min=0.0)
        slope = (model.schedule(t_up) - model.schedule(t_down)) / (t_up - t_down)
        a2 = 1 / (1 + torch.exp(-lam))  # alpha^2 = SNR / (1 + SNR)
        xt = a2.sqrt()[:, None] * x0 + (1 - a2).sqrt()[:, None] * eps
        diffusion = -0.5 * slope * lam.exp() * ((x0 - model.denoise(xt, lam)) ** 2).sum(1)
        a2_1, a2_0 = 1 / (1 + torch.exp(-ends[1])), 1 / (1 + torch.exp(-ends[0]))
        prior = kl_divergence(Normal(a2_1.sqrt() * x0, (1 - a2_1).sqrt()), Normal(0.0, 1.0)).sum(1)
        x0_tilde = a2_0.sqrt() * x0 + (1 - a2_0).sqrt() * eps
        joint = Normal(a2_0.sqrt() * grid, (1 - a2_0).sqrt()).log_prob(x0_tilde[..., None])  # (B, 64, 17)
        log_p = joint - torch.logsumexp(joint, -1, keepdim=True)
        reconstruction = -log_p.gather(-1, x[..., None]).sum((1, 2))
    oracle = dict(prior=prior, diffusion=diffusion, reconstruction=reconstruction)
    for name in ours:
        torch.testing.assert_close(ours[name], oracle[name], rtol=1e-6, atol=1e-9)
    reference = vdm_terms(to_grid(x).double(), model.denoise, model.schedule, gen(2))
    shape_params = [model.schedule.w2, model.schedule.w3]
    others = [model.schedule.log_snr_max, model.net.net[-1].bias]
    grads = torch.autograd.grad(model.loss(x, gen(2)).mean(), shape_params + others)
    variance_grads = torch.autograd.grad((reference["diffusion"] ** 2).mean(), shape_params, retain_graph=True)
    elbo_grads = torch.autograd.grad(sum(reference.values()).mean(), others)
    for got, want in zip(grads, variance_grads + elbo_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_model_terms_any_data_shape():
    """Eq. (eq-vdm-bpd): VDM.terms and nll_bound take images flat (B, 64) or shaped (B, 1, 8, 8) alike (same draws,
    same terms), and VDM.sample draws integer images in 0..16 through variational.gumbel_max."""
    torch.manual_seed(0)
    x = torch.randint(0, 17, (6, 64), generator=gen(0))
    model = VDM(hidden=16, n_hidden=1, log_probs=pixel_log_marginals(x)).double()
    with torch.no_grad():
        model.net.net[-1].weight.normal_(0, 0.1, generator=gen(1))
    flat, shaped = model.terms(x, gen(2)), model.terms(x.view(6, 1, 8, 8), gen(2))
    for name in flat:
        torch.testing.assert_close(flat[name], shaped[name], rtol=1e-12, atol=1e-12)
    bound = model.nll_bound(x.view(6, 1, 8, 8), repeats=3, generator=gen(3))
    assert all(v.shape == (6,) for v in bound.values())
    samples = model.sample(5, n_steps=4, generator=gen(4))
    assert samples.shape == (5, 64) and samples.dtype == torch.int64 and 0 <= samples.min() and samples.max() <= 16
    with pytest.raises(ValueError, match="64 pixels"):
        model.terms(torch.zeros(6, 63, dtype=torch.long))


def test_fit_vdm_recipe():
    """Eq. (eq-vdm-bpd): fit_vdm (notebook 08's recipe) steps the network at lr = 3e-3 and the schedule at 3e-2.

    Oracle: Adam's first step moves every parameter element by lr g / (|g| + 1e-8), i.e. by lr up to a
    relative 1e-8 / |g|: in each parameter tensor of digits_vdm that moves, the largest move equals its
    group's rate (1e-5 relative), and the loss history has one entry per step."""
    torch.manual_seed(0)
    x = torch.randint(0, 17, (64, 64), generator=gen(0))
    model = digits_vdm(x, hidden=16, n_hidden=1)
    before = {name: q.detach().clone() for name, q in model.named_parameters()}
    history = fit_vdm(model, x, n_steps=1, batch_size=64, generator=gen(1), progress=False)
    assert len(history) == 1
    moved = set()
    for name, q in model.named_parameters():
        rate, step = (3e-2 if name.startswith("schedule.") else 3e-3), (q.detach() - before[name]).abs().max().item()
        if step > 0:  # the hidden layers get no gradient at the first step: the last layer starts at zero
            assert abs(step - rate) < 1e-5 * rate, (name, step, rate)
            moved.add(name)
    assert {"net.net.2.weight", "schedule.log_snr_max", "schedule.log_snr_min", "schedule.w2"} <= moved, moved


def test_ancestral_sampler_with_exact_denoiser():
    """Eq. (eq-vdm-discrete-loss): p(x_s | x_t) = q(x_s | x_t, x_hat) with the exact denoiser reproduces the data.

    2000 samples of x0_tilde (the latent at t = 0) for eight Gaussians (100 steps, log-SNR 8 to -6) against
    its exact law, the mixture noised to lambda = 8: the mean log-density of the samples equals that of fresh draws
    within 4 SE, and their energy distance is below the floor's mean + 4 floor SDs (data vs data)."""
    p = eight_gaussians().to(dtype=torch.float64)
    x0_tilde = ancestral_sample(exact_denoiser(p), (2000, 2), toy_schedule(linear_log_snr), 100, generator=gen(0))
    target = p.noised(*alpha_sigma(torch.tensor(LAM_MAX, dtype=torch.float64)))  # the law of x0_tilde
    g = gen(1)
    ours, fresh = Estimate(target.log_prob(x0_tilde)), Estimate(target.log_prob(target.sample(2000, g)))
    assert abs(ours.value - fresh.value) < 4 * (ours.se**2 + fresh.se**2) ** 0.5, (ours, fresh)
    floor = energy_distance_floor(lambda n: target.sample(n, g), 2000, repeats=10)
    sd = floor.se * 10**0.5  # the spread of one data-vs-data distance
    assert energy_distance(x0_tilde, target.sample(2000, g)) < floor.value + 4 * sd, floor


def test_bad_input():
    """Eq. (eq-vdm-snr), Eq. (eq-vdm-reconstruction): bad input raises ValueError naming what was expected.

    t outside [0, 1], a rising log-SNR, T < 1, log_snr_max <= log_snr_min, data off the grid, a denoiser
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
    with pytest.raises(ValueError, match="log_snr_max > log_snr_min"):
        LearnedSchedule(log_snr_min=5.0, log_snr_max=-13.3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LearnedSchedule()(torch.tensor([-0.1, 0.5]))
    with pytest.raises(ValueError, match="grid"):
        reconstruction_term(x0, x0, 5.0, levels=17)
    with pytest.raises(ValueError, match=r"denoise_fn\(xt, log_snr\) and xt must have the same shape"):
        vdm_terms(x0, lambda xt, lam: xt[:, :1], schedule, levels=None)
    with pytest.raises(ValueError, match="positive int"):
        ancestral_sample(denoise, (4, 2), schedule, 0)
    with pytest.raises(ValueError, match="0..16"):
        to_grid(torch.tensor([[0, 17]]))
    with pytest.raises(ValueError, match="levels"):
        grid_values(1)


@pytest.mark.parametrize("use", ["vdm_terms", "discrete_diffusion_loss", "ancestral_sample", "q_posterior",
                                 "eps", "reconstruction_term"])
def test_shapes_must_match(use):
    """Eq. (eq-vdm-continuous-loss), Eq. (eq-vdm-discrete-loss), Eq. (eq-vdm-posterior): a denoiser output, a noise
    or a second tensor of shape (B, 1) for x of shape (B, 2) would broadcast; each raises a ValueError naming both."""
    p = eight_gaussians()
    x0, schedule = p.sample(4, gen(0)), toy_schedule(linear_log_snr)

    def bad(xt, log_snr):
        return xt[:, :1]

    calls = {"vdm_terms": lambda: vdm_terms(x0, bad, schedule, levels=None),
             "discrete_diffusion_loss": lambda: discrete_diffusion_loss(x0, bad, schedule, 10),
             "ancestral_sample": lambda: ancestral_sample(bad, (4, 2), schedule, 5),
             "q_posterior": lambda: q_posterior(x0, x0[:, :1], 2.0, 1.0),
             "eps": lambda: vdm_terms(x0, exact_denoiser(p), schedule, levels=None, eps=torch.zeros(4, 1)),
             "reconstruction_term": lambda: reconstruction_term(x0, x0[:, :1], 5.0, levels=None)}
    with pytest.raises(ValueError, match=r"\(4, 1\) and .* \(4, 2\)|\(4, 2\) and .* \(4, 1\)"):
        calls[use]()
