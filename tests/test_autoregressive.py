"""dgm.autoregressive: masks against autograd Jacobians, normalisation by enumeration, sampling by chi-square."""
import itertools

import pytest
import torch
from conftest import gen
from scipy.stats import chi2

from dgm.autoregressive import (
    MADE,
    CategoricalMADE,
    CausalConv1d,
    DilatedCausalStack,
    MaskedLinear,
    made_masks,
    receptive_field,
)


def all_states(dim: int, levels: int) -> torch.Tensor:
    """Every x in {0..levels-1}^dim, shape (levels^dim, dim), int64."""
    return torch.tensor(list(itertools.product(range(levels), repeat=dim)), dtype=torch.long)


def randomise(model: torch.nn.Module, seed: int, scale: float = 1.0) -> torch.nn.Module:
    """Overwrite every parameter with N(0, scale^2) noise so the model is far from uniform."""
    g = gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_chain_rule_factorisation():
    """Eq. (eq-ar-chain-rule): the product of the conditionals equals the joint.

    (a) For a random joint table over (3, 2, 4) values, the conditionals obtained by marginalising
    the table, sampled one variable at a time (x0, then x1 given x0, then x2 given both: ancestral
    sampling), give the table's frequencies (chi-square test, 200,000 draws). (b) For a
    CategoricalMADE, the conditionals p(x_i | x_<i) computed from its joint by enumeration are the
    softmax outputs of the network: the outputs are the chain rule's factors of the distribution
    that log_prob defines.
    """
    # (a) a random joint table p(x0, x1, x2)
    p = torch.rand(3, 2, 4, generator=gen(0), dtype=torch.float64)
    p = p / p.sum()
    p0 = p.sum((1, 2))  # (3,)
    p1_given_0 = p.sum(2) / p0[:, None]  # (3, 2)
    p2_given_01 = p / p.sum(2, keepdim=True)  # (3, 2, 4)
    n, g = 200_000, gen(2)
    x0 = torch.multinomial(p0, n, replacement=True, generator=g)  # (n,)
    x1 = torch.multinomial(p1_given_0[x0], 1, generator=g)[:, 0]  # (n,): one draw per row p(x1 | x0)
    x2 = torch.multinomial(p2_given_01[x0, x1], 1, generator=g)[:, 0]
    counts = torch.bincount((x0 * 2 + x1) * 4 + x2, minlength=24).double()  # same index as p.flatten()
    expected = n * p.flatten()
    statistic = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2.sf(statistic, df=23) > 1e-3, f"chi-square {statistic:.1f} on 23 degrees of freedom"

    # (b) the network's conditionals are those of its own joint, in a non-raster order
    order = torch.tensor([2, 0, 1])  # x1 first, then x2, then x0
    model = randomise(CategoricalMADE(dim=3, levels=3, hidden=(16,), order=order, features_per_dim=2), 1).double()
    x = all_states(3, 3)  # (27, 3)
    joint = model.log_prob(x).exp().reshape(3, 3, 3)  # indexed [x0, x1, x2]
    cond = torch.softmax(model.logits(x), -1).reshape(3, 3, 3, 3, 3)  # [x0, x1, x2, pixel, value]
    p_x1 = joint.sum((0, 2))  # (3,)
    p_x2_given_x1 = joint.sum(0) / p_x1[:, None]  # (3, 3) [x1, x2]
    p_x0_given_x1x2 = joint / joint.sum(0, keepdim=True)  # (3, 3, 3) [x0, x1, x2]
    torch.testing.assert_close(cond[0, 0, 0, 1], p_x1)  # the first factor sees nothing
    torch.testing.assert_close(cond[0, :, 0, 2], p_x2_given_x1)
    torch.testing.assert_close(cond[0, :, :, 0].permute(2, 0, 1), p_x0_given_x1x2)


@pytest.mark.parametrize("dim, hidden, out_per_dim", [(5, (16,), 1), (8, (32, 32), 3), (8, (5,), 2)])
def test_made_jacobian_is_strictly_triangular(dim, hidden, out_per_dim):
    """Eq. (eq-ar-made-mask): d out_i / d x_j == 0 unless order[j] < order[i], for raster and random orders.

    The oracle is autograd: the Jacobian at 64 random inputs (float64). Where the hidden layers have
    at least D - 1 units, every allowed pair (j, i) is also connected, by the masks and in the Jacobian.
    """
    for seed, order in enumerate([None, torch.randperm(dim, generator=gen(1)), torch.randperm(dim, generator=gen(2))]):
        made = randomise(MADE(dim, hidden=hidden, out_per_dim=out_per_dim, order=order), seed).double()
        o = made.order
        allowed = o[None, :] < o[:, None]  # (D_out, D_in): order[j] < order[i]
        x = torch.randn(64, dim, generator=gen(10 + seed), dtype=torch.float64)
        jac = torch.func.vmap(torch.func.jacrev(lambda v, made=made: made(v[None])[0]))(x)  # (B, D, k, D)
        support = jac.abs().amax(dim=(0, 2)) > 0  # (D_out, D_in): depends somewhere
        assert not (support & ~allowed).any(), "an output depends on an input at or after it in the order"
        masks = made_masks(o, hidden, out_per_dim)
        paths = masks[0]
        for m in masks[1:]:
            paths = m @ paths  # number of paths from input j to output unit
        connected = paths.reshape(dim, out_per_dim, dim).amax(1) > 0
        assert not (connected & ~allowed).any()
        if min(hidden) >= dim - 1:
            assert torch.equal(connected, allowed) and torch.equal(support, allowed)


def test_binary_autoregressive_model_sums_to_one():
    """Eq. (eq-ar-chain-rule): a MADE giving Bernoulli logits on 10 binary dims sums to 1 over all 1024 states.

    The per-pixel terms come from torch.distributions.Bernoulli. A MADE whose output 3 is allowed
    to see its own input (one mask entry broken) no longer sums to 1, so the check can fail.
    """
    order = torch.randperm(10, generator=gen(3))
    made = randomise(MADE(10, hidden=(32, 32), out_per_dim=1, order=order), 4).double()
    x = all_states(10, 2).double()  # (1024, 10)

    def log_p(model):
        logits = model(x)[..., 0]  # (1024, 10)
        return torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)  # (1024,)

    total = torch.logsumexp(log_p(made), 0).exp()
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))
    with torch.no_grad():  # let output 3 peek at x_3 through the first hidden unit that feeds it
        out, first = made.net[-1], made.net[0]
        k = int(out.mask[3].nonzero()[0])  # last-layer unit k feeds output 3 ...
        j = int(first.mask.sum(1).argmax())  # ... a first-layer unit j that sees many inputs
        first.mask[j, 3] = 1.0
        made.net[2].mask[k, j] = 1.0
        made.net[2].weight[k, j] = 3.0
        first.weight[j, 3] = 3.0
    assert abs(torch.logsumexp(log_p(made), 0).exp().item() - 1.0) > 1e-3


def test_categorical_made_is_normalised():
    """Eq. (eq-ar-categorical-nll): a small CategoricalMADE sums to 1 over all states, and its samples
    (drawn pixel by pixel in a random order) have the frequencies exp(log_prob): chi-square test."""
    model = randomise(CategoricalMADE(dim=3, levels=4, hidden=(16,), order=torch.tensor([1, 2, 0]),
                                      features_per_dim=3), 5, scale=0.8).double()
    x = all_states(3, 4)  # (64, 3)
    prob = model.log_prob(x).exp()  # (64,)
    torch.testing.assert_close(prob.sum(), torch.tensor(1.0, dtype=torch.float64))
    n = 40_000
    samples = model.sample(n, generator=gen(6))  # (n, 3)
    assert samples.dtype == torch.long and samples.shape == (n, 3)
    counts = torch.bincount((samples * torch.tensor([16, 4, 1])).sum(1), minlength=64).double()  # same index as x
    statistic = ((counts - n * prob) ** 2 / (n * prob)).sum().item()
    assert chi2.sf(statistic, df=63) > 1e-3, f"chi-square {statistic:.1f} on 63 degrees of freedom"
    # a model that ignores the order when sampling would fail: compare with raster-order frequencies
    wrong = torch.bincount((samples[:, [2, 0, 1]] * torch.tensor([16, 4, 1])).sum(1), minlength=64).double()
    assert chi2.sf(((wrong - n * prob) ** 2 / (n * prob)).sum().item(), df=63) < 1e-3


def dependence(module: torch.nn.Module, channels: int, length: int) -> torch.Tensor:
    """(T_out, T_in) bool: does output t depend on input s? From the autograd Jacobian at a random input."""
    x = torch.randn(1, channels, length, generator=gen(7), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(module, x)  # (1, C_out, T, 1, C, T)
    return jac.abs().sum(dim=(0, 1, 3, 4)) > 1e-12  # (T, T)


def last_output_dependence(module: torch.nn.Module, channels: int, length: int) -> torch.Tensor:
    """(T,) bool: the inputs the last output depends on, from one backward pass."""
    x = torch.randn(1, channels, length, generator=gen(7), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(module(x)[..., -1].sum(), x)  # (1, C, T)
    return grad.abs().sum(dim=(0, 1)) > 1e-12


def test_causal_conv_does_not_look_ahead():
    """Eq. (eq-ar-chain-rule): output t of a causal convolution (and of a dilated stack) is independent
    of the inputs after t (autograd), as a factor p(x_t | x_<t) must be; an ordinary 'same'-padded
    convolution does look ahead, so the check can fail."""
    T = 20
    for module, channels in [(CausalConv1d(2, 3, kernel_size=3, dilation=2), 2), (DilatedCausalStack(3, 3), 3)]:
        dep = dependence(randomise(module, 8).double(), channels, T)
        assert not torch.triu(dep, diagonal=1).any(), "an output depends on a future input"
        assert dep.diagonal().all()  # and it does see the present
    same = randomise(torch.nn.Conv1d(2, 2, 3, padding=1), 9).double()
    assert torch.triu(dependence(same, 2, T), diagonal=1).any()


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_receptive_field_formula(kernel_size):
    """Eq. (eq-ar-receptive-field): the measured dependence span of the last output equals
    1 + sum_l (k - 1) d_l, which is 2^L for k = 2 and dilations 1, 2, ..., 2^(L-1)."""
    for n_layers in range(1, 6):
        stack = randomise(DilatedCausalStack(2, n_layers, kernel_size), n_layers).double()
        T = 2 * receptive_field(kernel_size, stack.dilations) + 4
        dep = last_output_dependence(stack, 2, T)  # (T,): inputs the last output sees
        span = T - int(dep.nonzero().min())
        assert span == receptive_field(kernel_size, stack.dilations) == stack.receptive_field
        assert dep[T - span:].all()  # the stack sees every input inside its receptive field
        if kernel_size == 2:
            assert span == 2**n_layers
    conv = randomise(CausalConv1d(1, 1, kernel_size=3, dilation=4), 0).double()  # one layer: taps t, t-4, t-8
    assert last_output_dependence(conv, 1, 30).nonzero().flatten().tolist() == [21, 25, 29]
    assert receptive_field(3, [4]) == 29 - 21 + 1


def test_bad_input():
    """ValueError naming the expected and the given value for every user error."""
    with pytest.raises(ValueError, match=r"shape \(B, 5\), got \(4, 6\)"):
        MADE(5, hidden=(8,))(torch.zeros(4, 6))
    for bad in ([0, 1, 1], [0, 1], [0.0, 1.0, 2.0], [1, 2, 3]):
        with pytest.raises(ValueError, match=r"permutation of range\(3\)"):
            MADE(3, order=bad)
    with pytest.raises(ValueError, match=r"\(out_features, in_features\)=\(4, 3\), got \(3, 4\)"):
        MaskedLinear(3, 4, torch.ones(3, 4))
    model = CategoricalMADE(dim=4, levels=5, hidden=(8,))
    with pytest.raises(ValueError, match=r"integers in 0..4, got values in \[0, 5\]"):
        model.log_prob(torch.tensor([[0, 1, 2, 5]]))
    with pytest.raises(ValueError, match=r"integers in 0..4, got values in \[-1, 2\]"):
        model.log_prob(torch.tensor([[0, 1, 2, -1]]))
    with pytest.raises(ValueError, match=r"integers in 0..4, got dtype torch.float32"):
        model.log_prob(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"shape \(B, 4\), got \(2, 3\)"):
        model.log_prob(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"kernel_size must be a positive int, got 0"):
        CausalConv1d(1, 1, kernel_size=0)
    with pytest.raises(ValueError, match=r"shape \(B, 2, T\), got \(1, 3, 5\)"):
        CausalConv1d(2, 1)(torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match=r"kernel_size must be a positive int, got 0"):
        receptive_field(0, [1, 2])
    with pytest.raises(ValueError, match=r"dilations\[1\] must be a positive int, got 0"):
        receptive_field(2, [1, 0])
