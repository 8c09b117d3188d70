"""dgm.rbm, dgm.ebm and dgm.gan: RBMs against brute-force enumeration of every (x, h) state, the gradient of
log Z against autograd, Gibbs sampling against the enumerated distribution (chi-square), the
Gaussian RBM against torch.distributions and quadrature, the optimal discriminator against SciPy's
Jensen-Shannon divergence, Langevin negatives against a Gaussian's closed-form stationary law."""
import itertools
import math

import pytest
import torch
from conftest import gen
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare

from dgm.ebm import NeuralEnergy, ReplayBuffer, contrastive_loss, grid_log_z
from dgm.gan import (
    critic_loss,
    discriminator_loss,
    gan_value,
    generator_loss,
    gradient_penalty,
    optimal_discriminator,
    train_gan,
    wgan_generator_loss,
)
from dgm.nets import MLP
from dgm.rbm import PCD, RBM, GaussianRBM, cd_loss, hidden_states

D, H = 4, 3  # 2^4 visible x 2^3 hidden = 128 joint states: small enough to enumerate


def tiny_rbm(cls=RBM, seed=0, scale=1.0, **kwargs):
    """A float64 RBM with random parameters of order `scale` (far from the zero initialisation)."""
    rbm = cls(D, H, generator=gen(seed), **kwargs).double()
    g = gen(seed + 100)
    with torch.no_grad():
        for p in rbm.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return rbm


def all_binary(n):
    """All 2^n binary vectors (2^n, n) in float64, in itertools.product order (independent of hidden_states)."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def joint_table(rbm):
    """-E(x, h) for every pair: (2^D, 2^H) table, plus the state lists, from the energy alone."""
    xs, hs = all_binary(D), all_binary(H)
    x_rep, h_rep = xs.repeat_interleave(len(hs), 0), hs.repeat(len(xs), 1)  # every (x, h) pair
    return -rbm.energy(x_rep, h_rep).reshape(len(xs), len(hs)), xs, hs


def test_grad_log_z_is_model_expectation():
    """Thm. (thm-ebm-grad-log-z): grad log Z = E_model[grad(-E)] = (E[x h^T], E[x], E[h]).

    Left: autograd through log Z by full enumeration of (x, h). Right: the closed-form derivatives
    of -E (x h^T, x, h) averaged under the enumerated joint. The code's log_z gives the same gradient."""
    rbm = tiny_rbm()
    neg_e, xs, hs = joint_table(rbm)
    log_z = torch.logsumexp(neg_e.flatten(), 0)
    grads = torch.autograd.grad(log_z, [rbm.W, rbm.a, rbm.b])
    p = torch.softmax(neg_e.flatten(), 0).reshape(len(xs), len(hs)).detach()  # p(x, h)
    expected = [xs.T @ p @ hs, p.sum(1) @ xs, p.sum(0) @ hs]  # E[x h^T], E[x], E[h]
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)  # exact identities in float64: default tolerances (~1e-7 relative)
    for g, e in zip(torch.autograd.grad(rbm.log_z(), [rbm.W, rbm.a, rbm.b]), expected):
        torch.testing.assert_close(g, e)


def test_contrastive_loss_is_loglik_gradient():
    """Eq. (eq-ebm-loglik-grad): with exact model samples as negatives, grad contrastive_loss = -grad mean log p(x).

    Oracle: autograd through the exact log-likelihood. The negative phase is a Monte Carlo average
    over n model draws; its standard error comes from the per-state free-energy gradients."""
    rbm = tiny_rbm(seed=1)
    x_data = all_binary(D)[torch.tensor([0, 3, 5, 5, 9, 12, 15])]
    exact = torch.autograd.grad(-rbm.log_prob(x_data).mean(), [rbm.W, rbm.a, rbm.b])
    # exact negatives: draw states from the enumerated p(x)
    xs, n = all_binary(D), 50_000
    p_x = rbm.log_prob(xs).exp().detach()
    x_neg = xs[torch.multinomial(p_x, n, replacement=True, generator=gen(2))]
    mc = torch.autograd.grad(contrastive_loss(rbm.free_energy, x_data, x_neg).mean(), [rbm.W, rbm.a, rbm.b])
    # per-draw gradients of -F at each state (16 of them): the spread of the negative-phase average
    per_state = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(-rbm.free_energy(x[None]).sum(),
                                                                               [rbm.W, rbm.a, rbm.b])]) for x in xs])
    mean = p_x @ per_state
    se = torch.sqrt((p_x @ (per_state - mean) ** 2) / n)
    diff = torch.cat([m.flatten() for m in mc]) - torch.cat([e.flatten() for e in exact])
    assert torch.all(diff.abs() <= 4 * se + 1e-12), diff / se  # MC error only: 4 SE per coordinate


def test_rbm_conditionals_match_enumeration():
    """Eq. (eq-ebm-rbm-conditionals): p(h | x) and p(x | h) factorise into sigmoids; oracle: the joint table.

    The full brute-force conditional p(h | x) over all 2^H states equals the product of the
    per-unit Bernoullis, and likewise for p(x | h)."""
    rbm = tiny_rbm(seed=2)
    neg_e, xs, hs = joint_table(rbm)
    p_h_x = torch.softmax(neg_e, dim=1).detach()  # (2^D, 2^H): p(h | x) by brute force
    q = rbm.p_h_given_x(xs).detach()  # (2^D, H)
    factorised = torch.exp(hs @ q.log().T + (1 - hs) @ (1 - q).log().T).T  # (2^D, 2^H): prod_j Bernoulli
    torch.testing.assert_close(factorised, p_h_x)
    p_x_h = torch.softmax(neg_e, dim=0).detach().T  # (2^H, 2^D): p(x | h)
    r = rbm.p_x_given_h(hs).detach()  # (2^H, D)
    torch.testing.assert_close(torch.exp(xs @ r.log().T + (1 - xs) @ (1 - r).log().T).T, p_x_h)


def test_rbm_free_energy_matches_enumeration():
    """Eq. (eq-ebm-free-energy): F(x) = -log sum_h exp(-E(x, h)) by enumerating h (binary and Gaussian RBM)."""
    for cls in (RBM, GaussianRBM):
        rbm = tiny_rbm(cls, seed=3)
        xs = all_binary(D) if cls is RBM else torch.randn(16, D, generator=gen(4), dtype=torch.float64)
        hs = all_binary(H)
        neg_e = -rbm.energy(xs.repeat_interleave(len(hs), 0), hs.repeat(len(xs), 1)).reshape(len(xs), len(hs))
        torch.testing.assert_close(rbm.free_energy(xs), -torch.logsumexp(neg_e, 1))


def test_rbm_log_z_by_hidden_summation():
    """Eq. (eq-ebm-rbm-log-z): summing 2^H hidden states gives the log Z of the full (x, h) enumeration.

    Binary RBM: oracle = logsumexp over all 2^(D+H) states, and exp(log p(x)) sums to 1. Gaussian RBM
    (D = 2): oracle = a 2-D trapezoid quadrature of sum_h exp(-E(x, h)); the exact samples of
    sample_exact have the enumerated marginal."""
    rbm = tiny_rbm(seed=5, scale=1.5)
    neg_e, xs, _ = joint_table(rbm)
    torch.testing.assert_close(rbm.log_z(), torch.logsumexp(neg_e.flatten(), 0))
    torch.testing.assert_close(rbm.log_prob(xs).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    # exact ancestral samples: state frequencies within 4 SE of the enumerated p(x)
    n = 40_000
    samples = rbm.sample_exact(n, gen(6))
    counts = (samples @ (2.0 ** torch.arange(D - 1, -1, -1, dtype=torch.float64))).long().bincount(minlength=2**D)
    p = rbm.log_prob(xs).exp().detach()  # xs in product order = binary number with x_1 most significant
    assert torch.all((counts / n - p).abs() <= 4 * torch.sqrt(p * (1 - p) / n))
    # Gaussian-binary: quadrature over a box holding all the mass (means |a + W h| < 4, s = 0.7)
    grbm = GaussianRBM(2, H, sigma=torch.tensor([0.7, 0.9])).double()
    with torch.no_grad():
        for q in grbm.parameters():
            q.copy_(torch.randn(q.shape, generator=gen(7), dtype=torch.float64))
    t = torch.linspace(-10, 10, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(t, t)
    density = torch.exp(-grbm.free_energy(grid)).detach().reshape(801, 801)  # sum_h exp(-E(x, h))
    z_quad = torch.trapezoid(torch.trapezoid(density, t, dim=1), t)
    # the integrand is smooth and negligible at the edges: trapezoid error ~ (h^2) ~ 1e-8 relative
    torch.testing.assert_close(grbm.log_z(), torch.log(z_quad), rtol=1e-6, atol=1e-6)


def test_gaussian_rbm_conditionals():
    """Eq. (eq-ebm-gaussian-rbm): p(x | h) = N(a + W h, diag(s^2)) and p(h_j = 1 | x) = sigmoid(b_j + (W^T x / s^2)_j).

    Oracles: torch.distributions.Normal (E(x, h) + log N(x; a + W h, s^2) is constant in x for each h),
    and the brute-force p(h | x) from the energy over all 2^H hidden states."""
    sigma = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
    rbm = tiny_rbm(GaussianRBM, seed=8, sigma=sigma)
    x = 2 * torch.randn(32, D, generator=gen(9), dtype=torch.float64)
    for h in all_binary(H):
        h_rep = h.expand(len(x), H)
        normal = torch.distributions.Normal(rbm.p_x_given_h(h_rep), sigma)
        const = rbm.energy(x, h_rep) + normal.log_prob(x).sum(1)
        torch.testing.assert_close(const, const[0].expand(len(x)))
    hs = all_binary(H)
    neg_e = -rbm.energy(x.repeat_interleave(len(hs), 0), hs.repeat(len(x), 1)).reshape(len(x), len(hs))
    p_h1 = torch.softmax(neg_e, 1) @ hs  # (B, H): p(h_j = 1 | x) by brute force
    torch.testing.assert_close(rbm.p_h_given_x(x), p_h1)
    # sample_x draws from that Gaussian: sample mean within 4 SE of a + W h
    h = hs[5].expand(20_000, H)
    draws = rbm.sample_x(h, gen(10))
    se = sigma / math.sqrt(len(draws))
    assert torch.all((draws.mean(0) - rbm.p_x_given_h(h[:1])[0]).abs() <= 4 * se)


def test_gibbs_sampler_reaches_model():
    """Eq. (eq-ebm-rbm-conditionals): block Gibbs chains reach the RBM's p(x); chi-square against the enumeration.

    20 000 independent chains from uniform noise, 30 steps each (this RBM mixes in a few steps);
    the chi-square test of the visited states against p(x) must not reject at the 0.1 % level."""
    rbm = tiny_rbm(seed=11)
    x0 = torch.bernoulli(torch.full((20_000, D), 0.5, dtype=torch.float64), generator=gen(12))
    x = rbm.gibbs(x0, n_steps=30, generator=gen(13))
    counts = (x @ (2.0 ** torch.arange(D - 1, -1, -1, dtype=torch.float64))).long().bincount(minlength=2**D)
    p = rbm.log_prob(all_binary(D)).exp().detach()
    assert chisquare(counts.numpy(), (p * len(x)).numpy()).pvalue > 1e-3
    # and one Gibbs step started at data is CD's negative: not yet the model (a fixed state stays close)
    x1 = rbm.gibbs(torch.zeros(20_000, D, dtype=torch.float64), n_steps=1, generator=gen(14))
    c1 = (x1 @ (2.0 ** torch.arange(D - 1, -1, -1, dtype=torch.float64))).long().bincount(minlength=2**D)
    assert chisquare(c1.numpy(), (p * len(x)).numpy()).pvalue < 1e-6


def gibbs_transition(rbm):
    """T(x' | x) = sum_h p(h | x) p(x' | h) over all states, (2^D, 2^D), both conditionals from the joint table."""
    neg_e, _, _ = joint_table(rbm)
    p_h_x = torch.softmax(neg_e, dim=1)  # (2^D, 2^H): p(h | x) by brute force
    p_x_h = torch.softmax(neg_e, dim=0).T  # (2^H, 2^D): p(x' | h)
    return (p_h_x @ p_x_h).detach()


def test_cd_and_pcd_losses():
    """Eq. (eq-ebm-cd): CD-k restarts its chains at the data, PCD continues its own.

    Each CD term is F(x_n) - F(x~_n), x~_n after k Gibbs steps from x_n: with k = 0 every term, and so the loss and
    its gradient, vanish exactly. For k = 1 and 3 the gradient of the mean CD loss over many copies of four data
    points matches the exact expectation grad F(x_n) - sum_x' T^k(x' | x_n) grad F(x') within 4 SE per coordinate,
    T the Gibbs transition computed by enumerating the tiny RBM's joint table (the SE from the per-state free-energy
    gradients); the k = 1 and k = 3 expectations differ by many SE, so the test sees k. PCD's loss is
    F(x) - mean F(chains) with chains that persist across calls (they move, and keep their number)."""
    rbm = tiny_rbm(seed=15)
    x = all_binary(D)[[1, 6, 7, 14]]
    loss = cd_loss(rbm, x, k=0)
    assert loss.shape == (4,)
    torch.testing.assert_close(loss, torch.zeros(4, dtype=torch.float64), rtol=0, atol=0)
    params = [rbm.W, rbm.a, rbm.b]

    def flat_grad(value):
        return torch.cat([g.flatten() for g in torch.autograd.grad(value, params)])

    xs = all_binary(D)
    per_state = torch.stack([flat_grad(rbm.free_energy(s[None]).sum()) for s in xs])  # (2^D, P): grad F(x')
    index = (x @ (2.0 ** torch.arange(D - 1, -1, -1, dtype=torch.float64))).long()  # rows of x among the states
    n, expected = 20_000, {}
    for k in (1, 3):
        t_k = torch.linalg.matrix_power(gibbs_transition(rbm), k)[index]  # (4, 2^D): law of x~ given each x_n
        expected[k] = per_state[index].mean(0) - (t_k @ per_state).mean(0)  # (P,)
        mc = flat_grad(cd_loss(rbm, x.repeat(n, 1), k=k, generator=gen(16 + k)).mean())
        spread = t_k @ per_state**2 - (t_k @ per_state) ** 2  # (4, P): per-draw variance of grad F(x~) given x_n
        se = torch.sqrt(spread.sum(0) / (len(x) ** 2 * n))  # the mean over 4 n draws, n per data point
        assert torch.all((mc - expected[k]).abs() <= 4 * se + 1e-12), (k, (mc - expected[k]) / se)
    assert (expected[1] - expected[3]).abs().max() > 20 * se.max()
    pcd = PCD(torch.zeros(50, D, dtype=torch.float64), k=1, generator=gen(16))
    first = pcd(rbm, x)
    torch.testing.assert_close(first, rbm.free_energy(x) - rbm.free_energy(pcd.chains).mean())
    chains = pcd.chains.clone()
    pcd(rbm, x)
    assert pcd.chains.shape == (50, D) and not torch.equal(chains, pcd.chains)


class Quadratic(torch.nn.Module):
    """E(x) = ||x - m||^2 / 2: p = N(m, I), with a score method like NeuralEnergy's."""

    def __init__(self, m):
        super().__init__()
        self.m = torch.nn.Parameter(torch.as_tensor(m))

    def forward(self, x):
        return ((x - self.m) ** 2).sum(1) / 2

    score = NeuralEnergy.score


def test_replay_buffer_negatives():
    """Eq. (eq-ebm-langevin-negatives): short runs restarted from the buffer add up to long chains, and a fraction
    `restart` of the chains starts from fresh uniform noise on [-lim, lim]^D instead.

    For E = ||x - m||^2 / 2 the Langevin chain with step eps is the AR(1) chain
    x <- (1 - eps) x + eps m + sqrt(2 eps) xi, whose stationary law is N(m, 1 / (1 - eps / 2) I) (closed form).
    60 calls of 10 steps for 1000 of the 2000 entries (restart = 0): each entry is drawn about
    60 * 1000 / 2000 = 30 times, so it has run about 300 steps, and the buffer's mean and variance agree with
    the stationary law within 4 SE. Restarts: a buffer holding only the point m = (10, 10), far outside the box
    [-3.5, 3.5]^2, and one step of size 1e-4: the chains that restarted from noise are the ones inside the box,
    their fraction is `restart` within 4 binomial SE, and their mean and variance are those of U[-lim, lim]
    after one AR(1) step, within 4 SE."""
    torch.manual_seed(0)
    energy = Quadratic([1.0, -0.5])
    buffer = ReplayBuffer(dim=2, size=2000, restart=0.0, generator=gen(17))
    for _ in range(60):
        x_neg = buffer.negatives(energy, 1000, step_size=0.1, n_steps=10)
    assert x_neg.shape == (1000, 2)
    var = 1 / (1 - 0.1 / 2)
    # ~300 steps: time ~30 >> the chain's relaxation time 1 / eps = 10 steps, so all entries have mixed
    n = len(buffer.buffer)
    assert torch.all((buffer.buffer.mean(0) - energy.m.detach()).abs() < 4 * math.sqrt(var / n))
    assert torch.all((buffer.buffer.var(0) - var).abs() < 4 * var * math.sqrt(2 / n))
    # fresh-noise restarts
    far, lim, eps, restart, n = 10.0, 3.5, 1e-4, 0.3, 20_000
    buffer = ReplayBuffer(dim=2, size=n, lim=lim, restart=restart, generator=gen(23))
    buffer.buffer = torch.full((n, 2), far)
    x_neg = buffer.negatives(Quadratic([far, far]), n, step_size=eps, n_steps=1)
    fresh = (x_neg.abs() < lim + 0.1).all(1)  # one step moves a point by ~sqrt(2 eps) = 0.014
    assert torch.all((x_neg[~fresh] - far).abs() < 0.1)  # the others started at the buffer's point
    frac = fresh.double().mean().item()
    assert abs(frac - restart) < 4 * math.sqrt(restart * (1 - restart) / n)
    y = x_neg[fresh].double()  # (1 - eps) u + eps far + sqrt(2 eps) xi with u ~ U[-lim, lim]^2
    mean, var = eps * far, (1 - eps) ** 2 * lim**2 / 3 + 2 * eps
    assert torch.all((y.mean(0) - mean).abs() < 4 * math.sqrt(var / len(y)))
    fourth = (1 - eps) ** 4 * lim**4 / 5  # E[(y - mean)^4] to leading order: Var of the sample variance
    assert torch.all((y.var(0) - var).abs() < 4 * math.sqrt((fourth - var**2) / len(y)))
    # NeuralEnergy's score is -grad E, checked against a finite difference
    net = NeuralEnergy(2, hidden=8).double()
    x = torch.randn(5, 2, generator=gen(18), dtype=torch.float64)
    step = 1e-6 * torch.eye(2, dtype=torch.float64)
    fd = torch.stack([(net(x + s) - net(x - s)) / 2e-6 for s in step], 1)
    torch.testing.assert_close(net.score(x), -fd.detach(), rtol=1e-5, atol=1e-7)  # central difference: O(1e-12) error


def test_grid_normaliser():
    """Eq. (eq-ebm-boltzmann): the grid Riemann sum of exp(-E) gives log Z of N(0, s^2 I): log(2 pi s^2)."""
    s = 0.6
    log_z = grid_log_z(lambda x: (x**2).sum(1) / (2 * s**2), lim=3.5, n=300)
    # the box holds all but ~1e-8 of the mass; the midpoint-like sum of a smooth function is accurate to ~1e-6
    assert abs(log_z - math.log(2 * math.pi * s**2)) < 1e-4


def test_optimal_discriminator():
    """Eq. (eq-ebm-optimal-discriminator): V(D*, G) = 2 JS(p_data || p_G) - log 4, and D* maximises V.

    Two 1-D Gaussians; V by quadrature of the per-pair values of gan_value; oracle: SciPy's
    jensenshannon (natural log) on the same grid. Any other discriminator gives a smaller V."""
    p_data, p_g = torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(1.5, 0.7)
    t = torch.linspace(-12, 12, 20_001, dtype=torch.float64)
    log_p, log_q = p_data.log_prob(t), p_g.log_prob(t)
    logit = optimal_discriminator(log_p, log_q)

    def value(logit):  # V = int p log D + int q log(1 - D): both terms from gan_value
        real = gan_value(logit, torch.full_like(logit, -torch.inf))
        fake = gan_value(torch.full_like(logit, torch.inf), logit)
        return torch.trapezoid(log_p.exp() * real + log_q.exp() * fake, t)

    js = jensenshannon(log_p.exp().numpy(), log_q.exp().numpy()) ** 2  # JS divergence in nats (distance squared)
    assert abs(value(logit).item() - (2 * js - math.log(4))) < 1e-6  # quadrature on a 1e-3 grid: error ~ 1e-7
    for shift in (-0.3, 0.2):
        assert value(logit + shift) < value(logit)
    assert value(logit + 0.5 * torch.sin(t)) < value(logit)
    # discriminator_loss is -V per pair on samples: D* on samples reproduces V within 4 SE
    n = 200_000
    x = torch.randn(n, 1, generator=gen(21), dtype=torch.float64)  # ~ p_data
    x_fake = 1.5 + 0.7 * torch.randn(n, 1, generator=gen(22), dtype=torch.float64)  # ~ p_G
    d_star = lambda v: optimal_discriminator(p_data.log_prob(v), p_g.log_prob(v))  # noqa: E731
    neg_v = discriminator_loss(d_star, x, x_fake)
    assert abs(-neg_v.mean().item() - (2 * js - math.log(4))) < 4 * neg_v.std().item() / math.sqrt(n)


def test_gradient_penalty_linear_critic():
    """Eq. (eq-ebm-wgan): for a linear critic f(x) = w^T x the penalty is (||w|| - 1)^2 exactly, and the
    WGAN losses are the critic's mean difference; a 1-Lipschitz critic pays nothing."""
    lin = torch.nn.Linear(3, 1, bias=False).double()
    x, x_fake = torch.randn(2, 8, 3, generator=gen(19), dtype=torch.float64)
    w = lin.weight.detach()[0]
    torch.testing.assert_close(gradient_penalty(lin, x, x_fake, gen(20)), ((w.norm() - 1) ** 2).expand(8))
    torch.testing.assert_close(critic_loss(lin, x, x_fake, gp_weight=0.0), (x_fake - x) @ w)
    torch.testing.assert_close(wgan_generator_loss(lin, x_fake), -x_fake @ w)
    with torch.no_grad():
        lin.weight.div_(lin.weight.norm())
    torch.testing.assert_close(gradient_penalty(lin, x, x_fake), torch.zeros(8, dtype=torch.float64))
    # the non-saturating generator loss is -log D(G(z)) with D = sigmoid(logit)
    torch.testing.assert_close(generator_loss(lin, x_fake), -torch.log(torch.sigmoid(x_fake @ lin.weight[0])))


def test_bad_input():
    """Too many hidden units for exact log Z, non-binary states, wrong shapes, bad sigma/restart -> ValueError."""
    with pytest.raises(ValueError, match=r"n_hidden <= 20 .* got n_hidden=24 \(2\^24 = 16,777,216 terms\)"):
        RBM(4, 24).log_z()
    with pytest.raises(ValueError, match=r"n_hidden <= 20"):
        RBM(4, 21).sample_exact(3)
    with pytest.raises(ValueError, match=r"only 0s and 1s"):
        RBM(4, 2).free_energy(torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match=r"shape \(B, 4\), got \(3, 5\)"):
        RBM(4, 2).p_h_given_x(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(3, 4\)"):
        RBM(4, 2).p_x_given_h(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"positive int, got 0"):
        RBM(4, 0)
    with pytest.raises(ValueError, match=r"non-negative int, got -1"):
        RBM(4, 2).gibbs(torch.zeros(3, 4), n_steps=-1)
    with pytest.raises(ValueError, match=r"sigma must be finite and > 0"):
        GaussianRBM(3, 2, sigma=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"shape \(D,\)=\(3,\), got \(2,\)"):
        GaussianRBM(3, 2, sigma=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"restart must be a fraction in \[0, 1\], got 1.5"):
        ReplayBuffer(2, restart=1.5)
    with pytest.raises(ValueError, match=r"step_size must be finite and > 0"):
        ReplayBuffer(2, size=10).negatives(NeuralEnergy(2, hidden=4), 5, step_size=0.0)
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(5, 3\)"):
        NeuralEnergy(2)(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"x and x_fake must have the same shape, got x \(4, 2\) and x_fake \(3, 2\)"):
        gradient_penalty(MLP(2, 1), torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"n_steps must be a positive int, got 0"):
        train_gan(MLP(2, 2), MLP(2, 1), discriminator_loss, generator_loss, lambda n: torch.zeros(n, 2), n_steps=0)
    assert len(hidden_states(3).unique(dim=0)) == 8  # every hidden state once
