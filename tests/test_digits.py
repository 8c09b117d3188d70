"""dgm.digits: the fixed split, integer values, dequantisation and the nats/image bound."""
import math

import pytest
import torch
from conftest import gen
from sklearn.datasets import load_digits as sk_load_digits

from dgm.digits import DIGITS_LEVELS, dequantize, load_digits, nll_nats_per_image
from dgm.metrics import bits_per_dim


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
    """Eq. (eq-flows-dequantisation), two-sided: the bound minus -log P(x) is exactly KL(U[0, 1) || r) (1-D check).

    For p_y(y) = 2y on [0, 1) (a Beta(2, 1)) and 17 levels, P(x = k) = (2k + 1) / 17^2 and the density of
    u given the bin is r(u) = 2(k + u) / (2k + 1), so KL(U || r) = log((2k + 1) / 2) - [(k + 1) log(k + 1)
    - k log k - 1] (0.307 nats at k = 0, falling as 1 / (24 k^2)). The Monte Carlo estimate of the bound
    (2000 draws of u per level) minus the exact -log P(k) matches that gap within 4 standard errors at
    every level, so a bound that is too loose fails as well as one that is not a bound.
    """
    k = torch.arange(17, dtype=torch.float64)
    y = dequantize(torch.arange(17).repeat_interleave(2000), gen(1)).double()
    per_sample = nll_nats_per_image(torch.log(2 * y), dim=1).reshape(17, 2000)
    bound, se = per_sample.mean(1), per_sample.std(1) / math.sqrt(2000)  # E_u per level, and its SE
    exact = -torch.log((2 * k + 1) / 17**2)  # -log P(x = k)
    k_log_k = torch.xlogy(k, k)  # 0 log 0 = 0
    gap = torch.log((2 * k + 1) / 2) - ((k + 1) * torch.log(k + 1) - k_log_k - 1)  # KL(U || r), closed form
    assert torch.all(gap >= 0) and gap[0] == pytest.approx(1 - math.log(2))
    assert torch.all((bound - exact - gap).abs() < 4 * se), (bound - exact - gap) / se
    assert bound[0] - exact[0] > 4 * se[0]  # at level 0 the Jensen gap is clearly visible


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")
    with pytest.raises(ValueError, match="integers in 0..16"):
        dequantize(torch.rand(3, 64))
    with pytest.raises(ValueError, match="integers in 0..16"):
        dequantize(torch.full((3, 64), 17))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        nll_nats_per_image(torch.zeros(3, 64))


# A few ReLU features are never active on digits, so the covariances are singular; sqrtm warns
# about that, yet it still returns the right (positive semi-definite) root.
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_frechet_distance_matches_scipy_formula():
    """The sample-quality distance is the Fréchet distance between Gaussians fitted to classifier features.

    Oracle: the same formula with scipy.linalg.sqrtm on the sample means and covariances. A set
    against itself gives 0; the held-out test set lies much closer to the training set than images
    whose pixels are shuffled independently (the distance sees structure, not only pixel marginals).
    """
    import numpy as np
    from scipy.linalg import sqrtm

    import dgm.digits as digits

    train, test = load_digits("train")[0], load_digits("test")[0]
    f1, f2 = digits.features(test).double().numpy(), digits.features(train).double().numpy()
    s1, s2 = np.cov(f1.T), np.cov(f2.T)
    expected = ((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    # both are float64 eigen/Schur computations of the same matrices: agree to ~1e-6 relative
    assert digits.frechet_floor() == pytest.approx(expected, rel=1e-5)
    assert digits._frechet(torch.from_numpy(f1), torch.from_numpy(f1)) == pytest.approx(0.0, abs=1e-6)
    shuffled = train[torch.randint(len(train), (447, 64), generator=gen(0)), torch.arange(64)]
    assert digits.frechet_distance(shuffled) > 5 * digits.frechet_floor()


def test_feature_classifier_recognises_digits_and_rejects_bad_input():
    """The features come from a classifier that works: > 85% test accuracy (chance is 10%)."""
    import dgm.digits as digits

    assert digits.classifier_accuracy("test") > 0.85
    with pytest.raises(ValueError, match="64 pixels"):
        digits.features(torch.zeros(10, 63))
    with pytest.raises(ValueError, match="N >= 2"):
        digits.frechet_distance(torch.zeros(1, 64))


def test_pixel_log_marginals_are_smoothed_histograms():
    """Each pixel's law is its add-one histogram: rows sum to 1, and one pixel matches a count by hand."""
    from dgm.digits import pixel_log_marginals

    x = load_digits("train")[0]
    log_q = pixel_log_marginals(x, dtype=torch.float64)  # (64, 17)
    assert log_q.shape == (64, DIGITS_LEVELS) and log_q.dtype == torch.float64
    assert torch.allclose(log_q.exp().sum(1), torch.ones(64, dtype=torch.float64))
    counts = torch.tensor([(x[:, 20] == v).sum().item() + 1 for v in range(DIGITS_LEVELS)], dtype=torch.float64)
    assert torch.allclose(log_q[20], (counts / counts.sum()).log())
