"""dgm.vae: the VAE's ELBO terms, the importance-weighted bound and the Markovian hierarchical ELBO, checked on
exact linear-Gaussian models built from the pluggable encoder and decoder (closed forms, torch.distributions, MC)."""
import math

import numpy as np
import pytest
import torch
from conftest import gen
from scipy import integrate
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from dgm.vae import VAE, CategoricalDecoder, Decoder, Encoder, digits_vae, hierarchical_elbo
from dgm.variational import LinearGaussian

D, K = 4, 2


def exact_model(seed=0):
    """A float64 linear-Gaussian model whose W has orthogonal columns, so its posterior covariance is diagonal."""
    g = gen(seed)
    W = torch.linalg.qr(torch.randn(D, K, generator=g, dtype=torch.float64)).Q * torch.tensor([1.5, 0.7],
                                                                                             dtype=torch.float64)
    return LinearGaussian(W, torch.randn(D, generator=g, dtype=torch.float64), s=0.6)


def linear_vae(model, shift=0.0, log_var_shift=0.0):
    """A VAE with nn.Linear encoder and decoder that is the linear-Gaussian model exactly; its encoder outputs the exact
    posterior (mean + shift, log-variance + log_var_shift): shift = log_var_shift = 0 is the exact posterior."""
    cov = torch.linalg.inv(torch.eye(K, dtype=torch.float64) + model.W.T @ model.W / model.s**2)  # diagonal here
    M = model.W @ cov / model.s**2  # (D, k): posterior mean = (x - b) M
    enc = nn.Linear(D, 2 * K).double()
    dec = nn.Linear(K, D).double()
    with torch.no_grad():
        enc.weight.copy_(torch.cat([M.T, torch.zeros(K, D, dtype=torch.float64)]))
        enc.bias.copy_(torch.cat([-model.b @ M + shift, torch.diagonal(cov).log() + log_var_shift]))
        dec.weight.copy_(model.W)
        dec.bias.copy_(model.b)
    vae = VAE(Encoder(D, K, net=enc), Decoder(K, D, net=dec, learn_scale=False)).double()
    with torch.no_grad():
        vae.decoder.log_scale.fill_(math.log(model.s))  # set in float64 (a float32 log s would be off by ~1e-8)
    return vae


def test_vae_elbo_terms():
    """Eq. (eq-vi-elbo-split): per example (B,), recon is log p(x | z) of torch's Categorical at the reparameterised
    draw z = mean + sigma eps (the same eps), kl equals the closed form of torch.distributions and a Monte Carlo
    average of log q(z | x) - log p(z) within 4 SE, and elbo is the first oracle minus the second; the digits
    decoder's recon is a log-probability over the 17 values (its probabilities sum to 1 for every pixel)."""
    torch.manual_seed(0)
    model = digits_vae(latent_dim=3, hidden=16, dropout=0.0).double()
    x = torch.randint(0, 17, (5, 64), generator=gen(1))
    terms = model.elbo(x, gen(2))
    assert set(terms) == {"recon", "kl", "elbo"} and all(t.shape == (5,) for t in terms.values())
    assert torch.all(terms["recon"] <= 0)  # a discrete log-probability
    mean, log_var = model.encoder(x)
    q = Independent(Normal(mean, (0.5 * log_var).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mean), torch.ones_like(mean)), 1)
    kl_oracle = kl_divergence(q, prior)
    torch.testing.assert_close(terms["kl"], kl_oracle)
    # the same draw as `elbo` (generator gen(2)): z = mean + sigma eps, scored by torch's Categorical
    eps = torch.randn((1, *mean.shape), generator=gen(2), dtype=torch.float64)[0]
    z1 = mean + (0.5 * log_var).exp() * eps  # (B, k)
    recon_oracle = torch.distributions.Categorical(logits=model.decoder.logits(z1)).log_prob(x).sum(-1)  # (B,)
    torch.testing.assert_close(terms["recon"], recon_oracle)
    torch.testing.assert_close(terms["elbo"], recon_oracle - kl_oracle)
    z = q.sample((20_000,))  # (S, B, k)
    log_ratio = q.log_prob(z) - prior.log_prob(z)  # (S, B): single-draw KL estimates
    se = log_ratio.std(0) / len(z) ** 0.5
    assert torch.all((log_ratio.mean(0) - terms["kl"]).abs() < 4 * se)
    # the decoder is normalised over the 17 values: logsumexp over values of every pixel's log-probability is 0
    logits = model.decoder.logits(z[:3])  # (3, B, 64, 17)
    torch.testing.assert_close(torch.logsumexp(torch.log_softmax(logits, -1), -1), torch.zeros(3, 5, 64,
                                                                                              dtype=torch.float64))
    # log p(x | z) against torch's Categorical: the sum over pixels of log p(x_i | z)
    oracle = torch.distributions.Categorical(logits=logits).log_prob(x).sum(-1)  # (3, B)
    torch.testing.assert_close(model.decoder.log_prob(x, z[:3]), oracle)
    # on the continuous linear-Gaussian VAE, recon averages to the closed-form E_q[log p(x | z)] within 4 SE
    lg = exact_model()
    vae = linear_vae(lg, shift=0.4, log_var_shift=0.5)
    xg, _ = lg.sample(3, gen(3))
    draws = vae.elbo(xg.repeat(4000, 1), gen(100))["elbo"].reshape(4000, -1)  # (S, B): 4000 draws per x
    se = draws.std(0) / len(draws) ** 0.5
    mean, log_var = vae.encoder(xg)
    assert torch.all((draws.mean(0) - lg.elbo(xg, mean, log_var)).abs() < 4 * se)


def test_iwae_k1_equals_elbo():
    """Eq. (eq-vi-iwae): IWAE_1 = log p(x, z) - log q(z | x) at one z ~ q is the one-draw ELBO estimator: its mean is
    the closed-form ELBO of the linear-Gaussian model within 4 SE, and with the same noise it is
    recon + log p(z) - log q(z | x)."""
    lg = exact_model()
    vae = linear_vae(lg, shift=0.5, log_var_shift=-0.7)
    x, _ = lg.sample(4, gen(4))
    mean, log_var = vae.encoder(x)
    iwae1 = vae.iwae_bound(x.repeat(4000, 1), 1, gen(200)).reshape(4000, -1)  # (S, B): 4000 draws per x
    se = iwae1.std(0) / len(iwae1) ** 0.5
    error = iwae1.mean(0) - lg.elbo(x, mean, log_var)
    assert torch.all(error.abs() < 4 * se), error / se
    # the same draw z (same generator state) inside `elbo` and `iwae_bound`: they differ by log p(z) - log q(z | x) + kl
    terms = vae.elbo(x, gen(5))
    z = mean + (0.5 * log_var).exp() * torch.randn((1, *mean.shape), generator=gen(5), dtype=torch.float64)[0]
    q = Independent(Normal(mean, (0.5 * log_var).exp()), 1)
    log_prior = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
    torch.testing.assert_close(vae.iwae_bound(x, 1, gen(5)), terms["recon"] + log_prior - q.log_prob(z))


def relative_weight_moment(lg, shift, log_var_shift, n):
    """E_q[(w / p(x))^n] = int p(z | x)^n / q(z)^(n-1) dz for linear_vae's encoder, by SciPy quadrature per latent
    coordinate (the posterior and q are diagonal Gaussians, so the integral factorises)."""
    cov = torch.linalg.inv(torch.eye(K, dtype=torch.float64) + lg.W.T @ lg.W / lg.s**2)
    moment = 1.0
    for var in torch.diagonal(cov).tolist():
        post, q = Normal(0.0, var**0.5), Normal(shift, (var * math.exp(log_var_shift)) ** 0.5)  # z - posterior mean

        def integrand(z, post=post, q=q):
            z = torch.tensor(z, dtype=torch.float64)
            return torch.exp(n * post.log_prob(z) - (n - 1) * q.log_prob(z)).item()

        moment *= integrate.quad(integrand, -30, 30, epsabs=1e-13, epsrel=1e-11)[0]
    return moment


def test_iwae_monotone_in_k():
    """Thm. (thm-vi-iwae-monotone): E[IWAE_K] is non-decreasing in K (K = 1, 4, 16, 64, 256, each step within 4 SE of
    the difference or larger), never above log p(x) (within 4 SE), and tends to the exact log p(x) of the
    linear-Gaussian model. The rate: log p(x) - E[IWAE_K] = Var_q[w] / (2 K p(x)^2) + c2 / K^2 + O(K^-3), so
    K (log p(x) - E[IWAE_K]) at K = 16 equals Var_q[w / p(x)] / 2 (SciPy quadrature) within 4 SE plus |c2| / K, the
    first neglected term, c2 = 3 mu2^2 / 4 - mu3 / 3 from the central moments mu2, mu3 of w / p(x) (quadrature);
    here |c2| / K is below one SE."""
    lg = exact_model()
    vae = linear_vae(lg, shift=0.8, log_var_shift=0.6)  # a poor encoder: the ELBO gap is about a nat
    x, _ = lg.sample(3, gen(6))
    log_px = MultivariateNormal(lg.b, lg.W @ lg.W.T + lg.s**2 * torch.eye(D, dtype=torch.float64)).log_prob(x)
    ks, repeats = (1, 4, 16, 64, 256), 400
    means, ses = [], []
    for j, k in enumerate(ks):
        bounds = vae.iwae_bound(x.repeat(repeats, 1), k, gen(300 + j)).reshape(repeats, -1)  # (R, B)
        means.append(bounds.mean(0))
        ses.append(bounds.std(0) / repeats**0.5)
    gaps = [log_px - m for m in means]
    assert torch.all(gaps[0] > 0.3)  # K = 1: the ELBO, well below log p(x)
    for k in range(1, len(ks)):  # non-decreasing: a decrease larger than 4 SE of the difference would fail
        assert torch.all(means[k] - means[k - 1] > -4 * torch.sqrt(ses[k] ** 2 + ses[k - 1] ** 2))
        assert torch.all(gaps[k] > -4 * ses[k])  # a bound: never above log p(x) beyond the MC error
    assert torch.all(gaps[-1] < 4 * ses[-1] + 0.01)  # tends to log p(x)
    # the 1/K rate and its constant, on an encoder close enough to the posterior for the expansion to hold at K = 16
    shift, log_var_shift, k, repeats = 0.3, 0.3, 16, 20_000
    mild = linear_vae(lg, shift=shift, log_var_shift=log_var_shift)
    e2, e3 = (relative_weight_moment(lg, shift, log_var_shift, n) for n in (2, 3))
    mu2, mu3 = e2 - 1, e3 - 3 * e2 + 2  # central moments of w / p(x), whose mean is 1
    c2 = 0.75 * mu2**2 - mu3 / 3
    scaled_gap = k * (log_px - mild.iwae_bound(x.repeat(repeats, 1), k, gen(310)).reshape(repeats, -1))  # (R, B)
    se = scaled_gap.std() / scaled_gap.numel() ** 0.5  # the 3 x are exchangeable here: the same law of w / p(x)
    assert abs(c2) / k < se  # the first neglected term is below the Monte Carlo error
    assert abs(scaled_gap.mean() - mu2 / 2) < 4 * se + abs(c2) / k, (scaled_gap.mean().item(), mu2 / 2, se.item())


def test_exact_vae_elbo_is_tight():
    """Eq. (eq-vi-elbo-gap): a linear-Gaussian VAE whose encoder is the exact posterior has ELBO == log p(x): every
    draw's log p(x, z) - log q(z | x) equals log p(x) (torch's MultivariateNormal) to float64 precision, IWAE_K too,
    and the one-draw estimator `elbo` averages to it within 4 SE."""
    lg = exact_model()
    vae = linear_vae(lg)
    x, _ = lg.sample(5, gen(7))
    log_px = MultivariateNormal(lg.b, lg.W @ lg.W.T + lg.s**2 * torch.eye(D, dtype=torch.float64)).log_prob(x)
    torch.testing.assert_close(vae.log_weights(x, 30, gen(8)), log_px.expand(30, -1), rtol=0, atol=1e-9)
    torch.testing.assert_close(vae.iwae_bound(x, 10, gen(9)), log_px, rtol=0, atol=1e-9)
    mean, log_var = vae.encoder(x)
    torch.testing.assert_close(lg.elbo(x, mean, log_var), log_px, rtol=0, atol=1e-9)
    draws = vae.elbo(x.repeat(2000, 1), gen(400))["elbo"].reshape(2000, -1)  # recon - analytic kl: not constant
    se = draws.std(0) / len(draws) ** 0.5
    assert torch.all((draws.mean(0) - log_px).abs() < 4 * se)
    # a shifted encoder is strictly below, by the KL of the shift (closed form of eq-vi-elbo-gap)
    shifted = linear_vae(lg, shift=0.3)
    m2, lv2 = shifted.encoder(x)
    post = Independent(Normal(mean, (0.5 * log_var).exp()), 1)
    q = Independent(Normal(m2, (0.5 * lv2).exp()), 1)
    torch.testing.assert_close(lg.elbo(x, m2, lv2), log_px - kl_divergence(q, post))


class LinearGaussianStep:
    """A Gaussian conditional N(h A + c, v I) of h (B, n_in), A (n_in, n_out): (mean, log_var), (B, n_out) each."""

    def __init__(self, A, c, v, n_out=1):
        self.A = torch.as_tensor(A, dtype=torch.float64).reshape(-1, n_out)
        self.c, self.v = c, v

    def __call__(self, h):
        mean = h @ self.A + self.c
        return mean, torch.full_like(mean, math.log(self.v))


def test_hierarchical_elbo():
    """Eq. (eq-vi-hierarchical-elbo): on the chain z_2 ~ N(0, 1), z_1 | z_2 ~ N(a z_2, v_1),
    x | z_1 ~ N(w z_1 + b, v_0 I_3), the Monte Carlo Markovian ELBO is <= log p(x) (torch's MultivariateNormal) and
    equals log p(x) - KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)) within 4 SE (both joints 2-D Gaussians, KL by
    torch.distributions); with the exact posterior chain q(z_1 | x) = p(z_1 | x), q(z_2 | z_1) = p(z_2 | z_1)
    every draw equals log p(x)."""
    a, v1, v0 = 1.3, 0.4, 0.25
    w = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    b = torch.tensor([0.2, 0.0, -1.0], dtype=torch.float64)
    m1 = a**2 + v1  # marginal variance of z_1
    x = torch.tensor([[1.0, -0.3, 0.5], [-2.0, 1.0, -3.5]], dtype=torch.float64)
    log_px = MultivariateNormal(b, m1 * torch.outer(w, w) + v0 * torch.eye(3, dtype=torch.float64)).log_prob(x)
    decoders = [LinearGaussianStep(w, b, v0, n_out=3), LinearGaussianStep(a, 0.0, v1)]  # p(x | z_1), p(z_1 | z_2)
    # the exact posterior chain: p(z_1 | x) by conjugacy (prior N(0, m1)), p(z_2 | z_1) by Gaussian conditioning
    post_var = 1 / (1 / m1 + (w @ w) / v0)
    exact = [LinearGaussianStep(post_var * w / v0, -post_var * (w @ b) / v0, post_var),
             LinearGaussianStep(a / m1, 0.0, v1 / m1)]
    for i in range(5):  # zero-variance: log p(x, z) / q(z | x) = log p(x) for every draw
        elbo = hierarchical_elbo(x, exact, decoders, gen(11 + i))["elbo"]
        torch.testing.assert_close(elbo, log_px, rtol=0, atol=1e-9)  # float64 rounding only
    # a poorer chain q(z_1 | x) = N(c1 x + d1, u1), q(z_2 | z_1) = N(c2 z_1, u2): the gap is the joint KL
    c1, d1, u1, c2, u2 = exact[0].A * 0.7, 0.3, 0.5, 0.4, 0.9
    poor = [LinearGaussianStep(c1, d1, u1), LinearGaussianStep(c2, 0.0, u2)]
    n = 20_000
    draws = hierarchical_elbo(x.repeat(n, 1), poor, decoders, gen(20))["elbo"].reshape(n, -1)  # (S, B)
    se = draws.std(0) / n**0.5

    def joint(mean1, var1, slope, var2):
        """(z_1, z_2) with z_1 ~ N(mean1, var1), z_2 | z_1 ~ N(slope z_1, var2), as a 2-D Gaussian."""
        cov = torch.tensor([[var1, slope * var1], [slope * var1, slope**2 * var1 + var2]], dtype=torch.float64)
        return MultivariateNormal(torch.stack([mean1, slope * mean1], -1), cov)

    q = joint(x @ poor[0].A[:, 0] + d1, u1, c2, u2)
    p = joint(x @ exact[0].A[:, 0] + exact[0].c, post_var, a / m1, v1 / m1)
    gap = kl_divergence(q, p)
    assert torch.all(gap > 0.1)
    assert torch.all((draws.mean(0) - (log_px - gap)).abs() < 4 * se), (draws.mean(0) - (log_px - gap)) / se
    assert torch.all(draws.mean(0) < log_px)
    # each returned term against torch's Normal at the same draws (z_1 then z_2 from one generator, z = mean + sd eps)
    terms = hierarchical_elbo(x, poor, decoders, gen(10))
    g = gen(10)
    z1 = x @ poor[0].A + d1 + u1**0.5 * torch.randn((1, 2, 1), generator=g, dtype=torch.float64)[0]  # (B, 1)
    z2 = c2 * z1 + u2**0.5 * torch.randn((1, 2, 1), generator=g, dtype=torch.float64)[0]
    log_q1 = Normal(x @ poor[0].A[:, 0] + d1, u1**0.5).log_prob(z1[:, 0])  # (B,)
    oracle = dict(reconstruction=Independent(Normal(z1 * w + b, v0**0.5), 1).log_prob(x),
                  prior=Normal(0.0, 1.0).log_prob(z2[:, 0]) - Normal(c2 * z1[:, 0], u2**0.5).log_prob(z2[:, 0]),
                  consistency=Normal(a * z2[:, 0], v1**0.5).log_prob(z1[:, 0]) - log_q1)
    for name, value in oracle.items():
        torch.testing.assert_close(terms[name], value)
    torch.testing.assert_close(terms["elbo"], sum(oracle.values()))


def test_hierarchical_elbo_per_layer_kl_form():
    """Eq. (eq-vi-hierarchical-kl): on the chain z_2 ~ N(0, 1), z_1 | z_2 ~ N(a z_2, v_1), x | z_1 ~ N(w z_1 + b, v_0 I)
    with the inference chain q(z_1 | x) = N(c_1 x + d_1, u_1), q(z_2 | z_1) = N(c_2 z_1, u_2), the per-layer form
    E_q(z_1|x)[log p(x | z_1)] - KL(q(z_2 | x) || p(z_2)) - E_q(z_2|x)[KL(q(z_1 | z_2, x) || p(z_1 | z_2))], every
    part a closed form (the reverse conditional q(z_1 | z_2, x) by Gaussian conditioning, the outer expectation by
    Gauss-Hermite quadrature, exact for the quadratic integrand), equals the expectation of Eq.
    (eq-vi-hierarchical-elbo), log p(x) - KL(q(z_1, z_2 | x) || p(z_1, z_2 | x)) (torch.distributions), to float64
    precision, and the Monte Carlo mean of dgm.vae.hierarchical_elbo within 4 SE. The tempting form of the
    remark, -E[KL(q(z_1 | x) || p(z_1 | z_2))] with z_2 ~ q(z_2 | x), is not equal to it."""
    a, v1, v0 = 1.3, 0.4, 0.25
    w = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    b = torch.tensor([0.2, 0.0, -1.0], dtype=torch.float64)
    x = torch.tensor([[1.0, -0.3, 0.5], [-2.0, 1.0, -3.5]], dtype=torch.float64)
    # 1. the exact value of Eq. (eq-vi-hierarchical-elbo): log p(x) minus the KL between the two joints of (z_1, z_2)
    m1 = a**2 + v1  # the marginal variance of z_1 under the model
    log_px = MultivariateNormal(b, m1 * torch.outer(w, w) + v0 * torch.eye(3, dtype=torch.float64)).log_prob(x)
    post_var = 1 / (1 / m1 + (w @ w) / v0)  # p(z_1 | x) by conjugacy, then p(z_2 | z_1) by conditioning
    post_mean = post_var * ((x - b) @ w) / v0
    # an inference chain near, not at, the posterior chain (whose slopes are post_var w / v0 and a / m1)
    c1, d1, u1, c2, u2 = 0.8 * post_var * w / v0, 0.1, 1.5 * post_var, 0.6 * a / m1, 0.8

    def joint(mean1, var1, slope, var2):
        cov = torch.tensor([[var1, slope * var1], [slope * var1, slope**2 * var1 + var2]], dtype=torch.float64)
        return MultivariateNormal(torch.stack([mean1, slope * mean1], -1), cov)

    q1_mean = x @ c1 + d1  # (B,)
    expected_elbo = log_px - kl_divergence(joint(q1_mean, u1, c2, u2), joint(post_mean, post_var, a / m1, v1 / m1))
    # 2. the per-layer form, with m = c_1 x + d_1: q(z_2 | x) = N(c_2 m, c_2^2 u_1 + u_2) and
    #    q(z_1 | z_2, x) = N(m + k (z_2 - c_2 m), u_1 - k c_2 u_1), k = c_2 u_1 / Var(z_2) (Gaussian conditioning)
    q2_var = c2**2 * u1 + u2
    gain = c2 * u1 / q2_var
    recon = -0.5 * (((x - b - q1_mean[:, None] * w) ** 2).sum(1) + u1 * (w @ w)) / v0 - 1.5 * math.log(2 * math.pi * v0)
    prior_kl = kl_divergence(Normal(c2 * q1_mean, q2_var**0.5), Normal(0.0, 1.0))
    nodes, weights = np.polynomial.hermite_e.hermegauss(8)  # E over N(0, 1) of a polynomial of degree <= 15: exact
    z2 = c2 * q1_mean[:, None] + q2_var**0.5 * torch.from_numpy(nodes)  # (B, 8) nodes of q(z_2 | x)
    reverse = Normal(q1_mean[:, None] + gain * (z2 - c2 * q1_mean[:, None]), (u1 - gain * c2 * u1) ** 0.5)
    layer_kl = kl_divergence(reverse, Normal(a * z2, v1**0.5)) @ torch.from_numpy(weights / weights.sum())  # (B,)
    per_layer = recon - prior_kl - layer_kl
    torch.testing.assert_close(per_layer, expected_elbo, rtol=0, atol=1e-9)
    # 3. the code's one-draw estimator averages to it
    decoders = [LinearGaussianStep(w, b, v0, n_out=3), LinearGaussianStep(a, 0.0, v1)]
    n = 20_000
    draws = hierarchical_elbo(x.repeat(n, 1), [LinearGaussianStep(c1, d1, u1), LinearGaussianStep(c2, 0.0, u2)],
                              decoders, gen(30))["elbo"].reshape(n, -1)  # (S, B)
    se = draws.std(0) / n**0.5
    assert torch.all((draws.mean(0) - per_layer).abs() < 4 * se), (draws.mean(0) - per_layer) / se
    # 4. the remark: pairing p(z_1 | z_2) with q(z_1 | x) instead of the reverse conditional is not an identity
    tempting = kl_divergence(Normal(q1_mean[:, None], u1**0.5), Normal(a * z2, v1**0.5)) @ torch.from_numpy(
        weights / weights.sum())
    assert torch.all((recon - prior_kl - tempting - expected_elbo).abs() > 0.05)  # closed forms, 0.08 nats apart


def test_bad_input():
    """ValueError naming the expected and the given value: K < 1 importance samples, mismatched latent sizes between
    encoder and decoder, images of the wrong shape or outside 0..16, an encoder network of the wrong width."""
    model = digits_vae(latent_dim=3, hidden=8)
    x = torch.randint(0, 17, (2, 64), generator=gen(12))
    with pytest.raises(ValueError, match=r"K must be a positive int, got 0"):
        model.iwae_bound(x, 0)
    with pytest.raises(ValueError, match=r"mismatched latent sizes: .*latent_dim=3, the decoder latent_dim=4"):
        VAE(Encoder(64, 3), CategoricalDecoder(4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 64\), got \(2, 63\)"):
        model.elbo(x[:, :63])
    with pytest.raises(ValueError, match=r"x must hold integers in 0..16, got values in \[0, 17\]"):
        model.elbo(torch.cat([x[:, :63], torch.full((2, 1), 17)], 1))
    with pytest.raises(ValueError, match=r"integers in 0..16, got dtype torch.float32"):
        model.elbo(x.float())
    with pytest.raises(ValueError, match=r"must output shape \(B, 2k\)=\(2, 6\), got \(2, 5\)"):
        Encoder(64, 3, net=nn.Linear(64, 5))(x)
    with pytest.raises(ValueError, match=r"as many encoders as decoders \(T >= 1\), got 2 and 1"):
        hierarchical_elbo(x.double(), [None, None], [None])
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        digits_vae(dropout=1.0)
