"""dgm.digits: the fixed split, integer values, dequantisation and the nats/image bound."""
import math

import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from dgm.digits import DIGITS_LEVELS, dequantize, load_digits, nll_nats_per_image
from dgm.metrics import bits_per_dim
from conftest import gen


def test_split_sizes_order_and_values():
    """1000/350/447 in file order, integers 0..16, matching scikit-learn's own array."""
    sk = sk_load_digits()
    parts = [load_digits(s) for s in ("train", "val", "test")]
    assert [len(x) for x, _ in parts] == [1000, 350, 447]
    x_all = torch.cat([x for x, _ in parts])
    assert x_all.dtype == torch.int64 and x_all.min() == 0 and x_all.max() == 16
    assert torch.equal(x_all, torch.from_numpy(sk.data).long())
    assert torch.equal(torch.cat([y for _, y in parts]), torch.from_numpy(sk.target).long())
    assert load_digits("val", flat=False)[0].shape == (350, 1, 8, 8)


def test_dequantize_stays_in_its_bin():
    x, _ = load_digits("test")
    y = dequantize(x, gen(0))
    assert y.is_floating_point() and torch.equal(torch.floor(y * DIGITS_LEVELS).long(), x)


def test_uniform_model_gives_64_log_17_nats():
    """The uniform density on [0, 1)^64 has log p_y = 0, so the bound is 64 log 17 nats = log2(17) bits/dim."""
    nats = nll_nats_per_image(torch.zeros(3))
    torch.testing.assert_close(nats, torch.full((3,), 64 * math.log(17)))
    assert bits_per_dim(nats[0].item(), 64) == pytest.approx(math.log2(17))


def test_dequantised_nll_bounds_the_discrete_nll():
    """Eq. (eq-flows-dequantisation): Jensen: for a density p_y, -log P(x) = -log int_bin p_y <= E_u[-log p_y(y)] + D log 17 (1-D check)."""
    # A continuous density on [0, 1): p_y(y) = 2y (a Beta(2, 1)). P(x = k) = ((k+1)^2 - k^2) / 17^2.
    k = torch.arange(17).repeat_interleave(2000)
    y = dequantize(k, gen(1))
    per_sample = nll_nats_per_image(torch.log(2 * y), dim=1).reshape(17, 2000)
    bound, se = per_sample.mean(1), per_sample.std(1) / math.sqrt(2000)  # E_u per level, and its SE
    exact = -torch.log(((torch.arange(17) + 1.0) ** 2 - torch.arange(17) ** 2) / 17**2)
    assert torch.all(bound >= exact - 4 * se)
    assert bound[0] - exact[0] > 4 * se[0]  # at level 0 the Jensen gap (0.31 nats) is clearly visible


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")
    with pytest.raises(ValueError, match="integers in 0..16"):
        dequantize(torch.rand(3, 64))
    with pytest.raises(ValueError, match="integers in 0..16"):
        dequantize(torch.full((3, 64), 17))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        nll_nats_per_image(torch.zeros(3, 64))
