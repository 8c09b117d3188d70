"""dgm.flows: change of variables and invertible layers, checked against autograd Jacobians,
torch.distributions, explicit inverses and Monte Carlo."""
import math

import pytest
import torch
from conftest import gen
from torch.autograd.functional import jacobian

from dgm.flows import (
    MAF,
    AdditiveCoupling,
    AffineCoupling,
    Logit,
    NormalizingFlow,
    Permutation,
    Planar,
    Scaling,
    alternating_masks,
    nice,
    planar_flow,
    realnvp,
    reverse_permutation,
)

D = 4
MASK = torch.tensor([1.0, 0.0, 0.0, 1.0])


def randomise(module, scale=0.3, seed=0):
    """float64 copy with every parameter moved off its (identity) initialisation by N(0, scale^2) noise."""
    module = module.double()
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def every_layer(dim=D):
    """One random instance of every layer type, float64."""
    torch.manual_seed(0)
    mask = torch.arange(dim) % 2
    return {"additive": randomise(AdditiveCoupling(mask, hidden=16), seed=1),
            "affine": randomise(AffineCoupling(mask, hidden=16), seed=2),
            "permutation": Permutation(torch.randperm(dim, generator=gen(3))).double(),
            "reverse": reverse_permutation(dim).double(),
            "planar": randomise(Planar(dim), scale=0.8, seed=4),
            "maf": randomise(MAF(dim, hidden=16, order=torch.randperm(dim, generator=gen(5))), seed=6),
            "scaling": randomise(Scaling(dim), seed=7),
            "logit": Logit(dim, alpha=0.05)}


def inputs(name, n, seed, dim=D):
    """n float64 test points for a layer: in the unit box for the logit layer, N(0, 4 I) otherwise."""
    g = gen(seed)
    if name == "logit":
        return torch.rand(n, dim, generator=g, dtype=torch.float64)
    return 2 * torch.randn(n, dim, generator=g, dtype=torch.float64)


def autograd_log_det(f, x):
    """log|det df/dx| of each example, from the full autograd Jacobian (the oracle), shape (B,)."""
    return torch.stack([torch.linalg.slogdet(jacobian(lambda v: f(v[None])[0][0], xi))[1] for xi in x])


def test_change_of_variables_1d():
    """Eq. (eq-flows-cov-1d): p_X(x) = p_Z(f(x)) |f'(x)|, against closed forms and a histogram of samples.

    (a) x = exp(z), z ~ N(0, 1): f = log, |f'(x)| = 1/x gives torch's LogNormal density. (b) A 1-D scaling
    layer gives the Gaussian it must. (c) A nonlinear 1-D planar layer z = f(x) that compresses the line
    near its centre (f' = 0.2 there, a two-humped p_X as in the page's figure): its log_prob is
    log p_Z(f(x)) + log|f'(x)| with f' from autograd, and the formula integrated over each of 40 bins
    matches the frequencies of 400,000 samples x = f^{-1}(z) within 4 binomial standard errors.
    """
    x = torch.linspace(0.05, 6, 200, dtype=torch.float64)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(torch.log(x)) - torch.log(x)  # log p(z) + log|dz/dx|
    torch.testing.assert_close(log_p, torch.distributions.LogNormal(0.0, 1.0).log_prob(x))
    # the same push-forward with a flow layer: Scaling in 1-D is the linear map z = x e^s
    layer = Scaling(1).double()
    with torch.no_grad():
        layer.s.fill_(math.log(0.5))
    flow = NormalizingFlow([layer], 1)
    torch.testing.assert_close(flow.log_prob(x[:, None]), torch.distributions.Normal(0.0, 2.0).log_prob(x))
    # (c) a nonlinear map: planar z = x + u_hat tanh(w x + b) with w u_hat = -0.8, so f'(x) in [0.2, 1]
    planar = Planar(1).double()
    w, c = 3.0, -0.8
    with torch.no_grad():
        planar.w.fill_(w)
        planar.u.fill_(math.log(math.expm1(1 + c)) / w)  # softplus(w u) = 1 + c, hence w u_hat = c
        planar.b.fill_(0.3)
    flow = NormalizingFlow([planar], 1)
    torch.testing.assert_close(planar.w @ planar.u_hat(), torch.tensor(c, dtype=torch.float64))
    grid = torch.linspace(-4, 4, 40 * 200 + 1, dtype=torch.float64)  # 200 quadrature intervals per bin
    xg = grid[:, None].requires_grad_(True)
    fx = flow(xg)[0]  # (n, 1): z = f(x)
    (df,) = torch.autograd.grad(fx.sum(), xg)  # (n, 1): f'(x), the oracle for the layer's log_det
    formula = torch.distributions.Normal(0.0, 1.0).log_prob(fx[:, 0]) + torch.log(df[:, 0].abs())  # (n,)
    torch.testing.assert_close(flow.log_prob(grid[:, None]), formula.detach())
    density = formula.detach().exp()
    pieces = (density[:-1] + density[1:]) / 2 * torch.diff(grid)  # trapezoid rule, (n - 1,)
    prob = pieces.reshape(40, 200).sum(1)  # (40,): the formula's mass in each bin
    n = 400_000
    samples = flow.sample(n, gen(0))[:, 0]  # x = f^{-1}(z), z ~ N(0, 1)
    freq = torch.histogram(samples, grid[::200].contiguous()).hist / n  # (40,)
    se = torch.sqrt(prob * (1 - prob) / n)  # binomial standard error of each bin's frequency
    assert torch.all((freq - prob).abs() < 4 * se), (freq - prob) / se
    assert prob[19] < 0.5 * prob[16] and prob[19] < 0.5 * prob[22]  # a trough at the centre between two humps


def affine_flow(dim=3):
    """A flow whose layers are all affine: scalings, couplings with linear conditioners, a permutation."""
    shears = [AdditiveCoupling(m, hidden=4) for m in alternating_masks(dim, 2)]
    g = gen(8)
    for layer in shears:
        layer.t = torch.nn.Linear(dim, dim)  # a linear conditioner: the coupling is a shear
        with torch.no_grad():
            layer.t.weight.copy_(torch.randn(dim, dim, generator=g))
            layer.t.bias.copy_(torch.randn(dim, generator=g))
    layers = [randomise(Scaling(dim), seed=9), *shears, reverse_permutation(dim), randomise(Scaling(dim), seed=10)]
    return NormalizingFlow(layers, dim).double()


def test_linear_flow_matches_gaussian():
    """Eq. (eq-flows-cov-nd): for an affine flow z = A x + c, log_prob is the density of N(-A^{-1} c, (A^T A)^{-1}).

    A and c come from the flow itself (its autograd Jacobian and f(0)); the oracle is torch's MultivariateNormal,
    and samples drawn through the inverse have that mean (MC, 4 SE)."""
    flow = affine_flow(3)
    zero = torch.zeros(3, dtype=torch.float64)
    A = jacobian(lambda v: flow(v[None])[0][0], zero)  # (3, 3)
    c = flow(zero[None])[0][0]
    gaussian = torch.distributions.MultivariateNormal(-torch.linalg.solve(A, c), precision_matrix=A.T @ A)
    x = torch.randn(100, 3, generator=gen(11), dtype=torch.float64) * 2
    torch.testing.assert_close(flow.log_prob(x), gaussian.log_prob(x))
    samples = flow.sample(50_000, gen(12))
    se = samples.std(0) / len(samples) ** 0.5
    assert torch.all((samples.mean(0) - gaussian.mean).abs() < 4 * se)


def test_log_dets_add_under_composition():
    """Eq. (eq-flows-composition): the flow's log_det is the sum of its layers' log_dets and equals
    log|det| of the autograd Jacobian of the whole composition."""
    layers = every_layer()
    layers = [layers.pop("logit"), *layers.values()]  # the logit layer first: data in the unit box
    flow = NormalizingFlow(layers, D)
    x = inputs("logit", 6, 13)
    z, log_det = flow(x)
    total, h = torch.zeros(6, dtype=torch.float64), x
    for layer in layers:
        h, ld = layer(h)
        total = total + ld
    torch.testing.assert_close(h, z)
    torch.testing.assert_close(log_det, total)
    torch.testing.assert_close(log_det, autograd_log_det(flow, x))


@pytest.mark.parametrize("name", list(every_layer()))
def test_layers_invert(name):
    """Eq. (eq-flows-nice-inverse), Eq. (eq-flows-realnvp), Eq. (eq-flows-planar-condition), Eq. (eq-flows-maf):
    inverse(forward(x)) == x and forward(inverse(z)) == z for every layer type (float64)."""
    layer = every_layer()[name]
    x, z = inputs(name, 64, 14), 2 * torch.randn(64, D, generator=gen(15), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer.inverse(layer(x)[0]), x)
        torch.testing.assert_close(layer(layer.inverse(z))[0], z)


def test_flow_inverts_and_samples():
    """Eq. (eq-flows-composition): the stack inverts layer by layer in reverse order for every factory;
    trajectory ends at forward's z; sample has the right shape."""
    x = torch.randn(32, 2, generator=gen(15), dtype=torch.float64)
    for make in (realnvp, nice, planar_flow):
        flow = randomise(make(2), scale=0.1, seed=16)
        z, _ = flow(x)
        torch.testing.assert_close(flow.inverse(z), x)
        states = flow.trajectory(x)
        assert len(states) == len(flow.layers) + 1 and torch.equal(states[0], x)
        torch.testing.assert_close(states[-1], z)
        assert flow.sample(5, gen(17)).shape == (5, 2)


@pytest.mark.parametrize("name", list(every_layer()))
def test_layer_log_det_matches_autograd(name):
    """Eq. (eq-flows-cov-nd): each layer's log_det equals log|det| of its autograd Jacobian (float64)."""
    layer = every_layer()[name]
    x = inputs(name, 5, 18)
    torch.testing.assert_close(layer(x)[1], autograd_log_det(layer, x))


def test_layers_start_at_the_identity():
    """Eq. (eq-flows-realnvp), Eq. (eq-flows-planar): zero-initialised conditioners (u_hat = 0 for planar) make
    each new layer the identity map."""
    x = torch.randn(8, D, generator=gen(19))
    for layer in (AdditiveCoupling(MASK), AffineCoupling(MASK), Planar(D), MAF(D)):
        z, log_det = layer(x)
        torch.testing.assert_close(z, x)
        torch.testing.assert_close(log_det, torch.zeros(8))


def test_additive_coupling_is_volume_preserving():
    """Eq. (eq-flows-nice): an additive coupling has log_det == 0 exactly and |det J| == 1 (autograd),
    and so does a stack of them (NICE without its final scaling)."""
    layer = every_layer()["additive"]
    x = torch.randn(5, D, generator=gen(20), dtype=torch.float64) * 3
    assert torch.equal(layer(x)[1], torch.zeros(5, dtype=torch.float64))
    J = jacobian(lambda v: layer(v[None])[0][0], x[0])
    assert not torch.allclose(J, torch.eye(D, dtype=J.dtype))  # a genuinely non-trivial map
    torch.testing.assert_close(torch.linalg.det(J).abs(), torch.tensor(1.0, dtype=J.dtype))
    stack = randomise(nice(D, n_layers=4, hidden=16, scaling=False), seed=21)
    assert torch.equal(stack(x)[1], torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(autograd_log_det(stack, x), torch.zeros(5, dtype=torch.float64))


def test_two_block_stack_inverse():
    """Ex. (ex-flows-two-block-inverse), Eq. (eq-flows-nice-inverse): two additive blocks with swapped roles,
    x'_b = x_b + F(x_a) then x'_a = x_a + G(x'_b), invert as x_a = x'_a - G(x'_b), then x_b = x'_b - F(x_a)."""
    m = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # a = first half, b = second half
    first = randomise(AdditiveCoupling(m, hidden=16), seed=22)
    second = randomise(AdditiveCoupling(1 - m, hidden=16), seed=23)
    x = torch.randn(10, D, generator=gen(24), dtype=torch.float64)
    y = second(first(x)[0])[0]
    F = lambda a: first.t(a * m) * (1 - m)  # noqa: E731  the shift of the b half, from the a half
    G = lambda b: second.t(b * (1 - m)) * m  # noqa: E731  the shift of the a half, from the b half
    with torch.no_grad():
        x_a = y * m - G(y * (1 - m))  # undo the last block first
        x_b = y * (1 - m) - F(x_a)
        torch.testing.assert_close(x_a + x_b, x)
        torch.testing.assert_close(NormalizingFlow([first, second], D).inverse(y), x)


def test_affine_coupling_log_det():
    """Eq. (eq-flows-realnvp-logdet): log_det == the sum of the log-scales s(x_a), which are the log of the
    Jacobian's diagonal (autograd) on the transformed half and 0 on the kept half."""
    layer = every_layer()["affine"]
    x = torch.randn(5, D, generator=gen(25), dtype=torch.float64)
    s, _ = layer._log_scale_and_shift(x * layer.mask)  # (B, D)
    torch.testing.assert_close(layer(x)[1], s.sum(1))
    assert torch.all(s[:, layer.mask == 1] == 0) and torch.all(s[:, layer.mask == 0] != 0)
    for xi, si in zip(x, s):
        J = jacobian(lambda v: layer(v[None])[0][0], xi)
        torch.testing.assert_close(torch.log(torch.diagonal(J)), si)
        kept, moved = layer.mask == 1, layer.mask == 0
        assert torch.all(J[kept][:, moved] == 0)  # block triangular: z_a = x_a ignores x_b


def test_planar_log_det():
    """Eq. (eq-flows-planar-logdet): log|1 + u_hat^T psi(x)| (matrix determinant lemma) == log|det(I + u_hat psi^T)|
    computed densely, == autograd."""
    layer = every_layer(6)["planar"]
    x = torch.randn(5, 6, generator=gen(26), dtype=torch.float64)
    with torch.no_grad():
        h_prime = 1 - torch.tanh(x @ layer.w + layer.b) ** 2  # (B,)
        dense = torch.eye(6, dtype=x.dtype) + h_prime[:, None, None] * torch.outer(layer.u_hat(), layer.w)  # (B, 6, 6)
        torch.testing.assert_close(layer(x)[1], torch.linalg.slogdet(dense)[1])
    torch.testing.assert_close(layer(x)[1], autograd_log_det(layer, x))


def test_planar_invertibility_condition():
    """Eq. (eq-flows-planar-condition): with w^T u_hat >= -1 the map is monotone along w and inverts; the
    reparameterised u_hat keeps the condition for any u; a raw u with w^T u < -1 maps two points to one."""
    layer = Planar(3).double()
    w = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        layer.w.copy_(w)
        layer.b.fill_(0.3)
        for wu in (-50.0, -3.0, -1.0, 0.0, 4.0):  # u along w with w^T u = wu, and a sideways part
            layer.u.copy_(wu * w / (w @ w) + torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64))
            c = w @ layer.u_hat()
            assert c >= -1 - 1e-12, (wu, c)  # up to rounding: softplus(-50) ~ 2e-22
            alpha = torch.linspace(-10, 10, 2001, dtype=torch.float64)
            assert torch.all(torch.diff(alpha + c * torch.tanh(alpha + layer.b)) > 0)  # w^T z increases with w^T x
            x = torch.randn(50, 3, generator=gen(27), dtype=torch.float64) * 3
            torch.testing.assert_close(layer.inverse(layer(x)[0]), x)
    # the raw map z = x + u tanh(w^T x) with u = -3 w / |w|^2 (w^T u = -3 < -1) is not injective:
    # along x = t w / |w|^2 it is t -> t - 3 tanh(t), which has roots t = 0 and t* = 3 tanh(t*) > 0
    u = -3 * w / (w @ w)
    raw = lambda x: x + torch.tanh(x @ w)[:, None] * u  # noqa: E731
    lo, hi = torch.tensor(1.0, dtype=torch.float64), torch.tensor(4.0, dtype=torch.float64)
    for _ in range(80):  # bisection for t* on [1, 4], where t - 3 tanh(t) changes sign
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid - 3 * torch.tanh(mid) < 0 else (lo, mid)
    x1, x2 = torch.zeros(1, 3, dtype=torch.float64), (lo * w / (w @ w))[None]
    assert (x1 - x2).norm() > 1
    torch.testing.assert_close(raw(x1), raw(x2))


def test_maf_jacobian_is_triangular():
    """Eq. (eq-flows-maf): dz_i/dx_j == 0 unless order[j] <= order[i] (triangular in the order), the diagonal
    is exp(-alpha_i), and log_det == the sum of the log of that diagonal."""
    layer = every_layer(5)["maf"]
    order = layer.made.order
    x = torch.randn(4, 5, generator=gen(28), dtype=torch.float64)
    _, log_det = layer(x)
    for xi, ld in zip(x, log_det):
        J = jacobian(lambda v: layer(v[None])[0][0], xi)
        later = order[None, :] > order[:, None]  # (i, j): x_j comes after z_i in the order
        assert torch.all(J[later] == 0) and torch.all(torch.diagonal(J) != 0)
        torch.testing.assert_close(ld, torch.log(torch.diagonal(J).abs()).sum())
        _, alpha = layer._shift_and_log_scale(xi[None])
        torch.testing.assert_close(torch.diagonal(J), torch.exp(-alpha[0]))


def test_flow_density_integrates_to_one():
    """Eq. (eq-flows-composition): exp(log_prob) of random 2-D RealNVP, NICE, planar and MAF flows integrates
    to 1 on a grid (Riemann sum): the summed log_dets make a normalised density."""
    n, lim = 300, 10.0
    xs = torch.linspace(-lim, lim, n, dtype=torch.float64)
    points = torch.cartesian_prod(xs, xs)  # (n^2, 2)
    cell = (xs[1] - xs[0]) ** 2
    torch.manual_seed(0)
    flows = {"realnvp": realnvp(2, hidden=16), "nice": nice(2, hidden=16), "planar": planar_flow(2),
             "maf": NormalizingFlow([MAF(2, hidden=16), MAF(2, hidden=16, order=[1, 0])], 2)}
    for seed, (name, flow) in enumerate(flows.items()):
        flow = randomise(flow, scale=0.1, seed=29 + seed)
        with torch.no_grad():
            mass = sum(flow.log_prob(chunk).exp().sum() for chunk in points.split(40_000)).item() * cell
        assert abs(mass - 1) < 5e-3, (name, mass)


def test_bad_input():
    """Wrong mask sizes or values, dimension mismatches, bad permutations -> ValueError naming what was expected."""
    with pytest.raises(ValueError, match=r"only 0s and 1s"):
        AffineCoupling(torch.tensor([0.0, 0.5, 1.0]))
    for bad in ([1.0, 1.0, 1.0], [0.0, 0.0]):  # nothing to transform / nothing to condition on
        with pytest.raises(ValueError, match=r"both at least once"):
            AdditiveCoupling(torch.tensor(bad))
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        AffineCoupling(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"shape \(B, 3\), got \(5, 2\)"):  # a 3-entry mask on 2-D data
        AffineCoupling(torch.tensor([1.0, 0.0, 1.0]))(torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(5, 3\)"):
        realnvp(2).log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(5, 3\)"):
        planar_flow(2).inverse(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"shape \(B, 4\), got \(5,\)"):
        MAF(4)(torch.zeros(5))
    with pytest.raises(ValueError, match=r"D=2 coordinates, got AffineCoupling \(D=3\)"):
        NormalizingFlow([AffineCoupling(torch.tensor([1.0, 0.0, 1.0]))], dim=2)
    with pytest.raises(ValueError, match=r"permutation of 0..D-1"):
        Permutation([0, 0, 1])
    with pytest.raises(ValueError, match=r"dim >= 2"):
        alternating_masks(1, 4)
