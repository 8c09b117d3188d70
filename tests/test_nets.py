"""dgm.nets: shapes, the conditioning scalar and clear errors."""
import pytest
import torch
from conftest import gen

from dgm.nets import MLP, FourierEmbedding, TimeMLP


def test_mlp_shapes_and_depth():
    """MLP(d_in, d_out, hidden, n_hidden) maps (B, d_in) -> (B, d_out) with n_hidden hidden layers."""
    net = MLP(3, 5, hidden=16, n_hidden=3)
    assert net(torch.randn(7, 3, generator=gen(0))).shape == (7, 5)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 4
    with pytest.raises(ValueError, match="n_hidden"):
        MLP(3, 5, n_hidden=0)
    with pytest.raises(ValueError, match="d_in"):
        MLP(0, 5)


def test_time_mlp_broadcasts_a_float_and_depends_on_c():
    """A float c equals the same value repeated per example; different c give different outputs."""
    torch.manual_seed(0)
    net = TimeMLP(2, hidden=32, n_hidden=2, emb_dim=8)
    x = torch.randn(5, 2, generator=gen(1))
    assert torch.equal(net(x, 0.3), net(x, torch.full((5,), 0.3)))
    assert not torch.allclose(net(x, 0.3), net(x, 0.7))
    assert net(x, torch.rand(5, generator=gen(2))).shape == (5, 2)


def test_fourier_embedding_is_fixed_and_bounded():
    """The frequencies are seeded (the same in every run) and the features lie in [-1, 1]."""
    e1, e2 = FourierEmbedding(16), FourierEmbedding(16)
    c = torch.linspace(-3, 3, 11)
    assert torch.equal(e1(c), e2(c)) and e1(c).shape == (11, 16) and e1(c).abs().max() <= 1


def test_bad_input():
    """Wrong x shape, wrong c shape and an odd embedding size raise ValueError naming what was expected."""
    net = TimeMLP(2)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        net(torch.zeros(4, 3), 0.5)
    with pytest.raises(ValueError, match=r"\(B,\)=\(4,\)"):
        net(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="even"):
        FourierEmbedding(7)


def test_mlp_dropout_is_active_only_in_training():
    """dropout > 0 inserts nn.Dropout after each hidden activation: random in train mode, the identity in eval."""
    torch.manual_seed(0)
    net = MLP(4, 3, hidden=64, n_hidden=2, dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in net) == 2
    x = torch.randn(8, 4, generator=gen(3))
    assert not torch.equal(net(x), net(x))  # two dropout masks
    net.eval()
    assert torch.equal(net(x), net(x))
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 3, dropout=1.0)


def test_mlp_activation_and_zero_last_layer():
    """act= sets the hidden activation; zero_last=True outputs 0 at initialisation and leaves the other layers'
    random weights as the default MLP draws them (same seed, same weights)."""
    torch.manual_seed(0)
    plain = MLP(3, 4, hidden=8, n_hidden=2, act=torch.nn.Tanh)
    torch.manual_seed(0)
    zeroed = MLP(3, 4, hidden=8, n_hidden=2, act=torch.nn.Tanh, zero_last=True)
    assert sum(isinstance(m, torch.nn.Tanh) for m in zeroed) == 2
    x = torch.randn(5, 3, generator=gen(4))
    assert torch.equal(zeroed(x), torch.zeros(5, 4))
    for a, b in zip(list(plain.parameters())[:-2], list(zeroed.parameters())[:-2]):
        assert torch.equal(a, b)
    assert not torch.equal(plain(x), zeroed(x))
