"""Unit tests of dgm.exercises, the checks of the notebooks' "Your turn" exercises."""
import pytest
import torch
from conftest import gen

from dgm.exercises import check_close, check_estimate, check_true


def test_check_close_passes_within_tolerance(capsys):
    x = torch.randn(3, 2, generator=gen(0))
    check_close("x", x + 1e-7, x, atol=1e-6, rtol=0.0)  # float64 copies: 1e-7 < 1e-6
    out = capsys.readouterr().out
    assert out.startswith("✓ x: matches the oracle") and out.count("\n") == 1


def test_check_close_tolerance_is_atol_plus_rtol():
    check_close("a", torch.tensor([10.5]), torch.tensor([10.0]), atol=0.0, rtol=0.051)
    with pytest.raises(AssertionError, match="1 of 1 entries differ"):
        check_close("a", torch.tensor([10.5]), torch.tensor([10.0]), atol=0.0, rtol=0.049)
    with pytest.raises(AssertionError, match="1 of 1 entries differ"):
        check_close("a", torch.tensor([10.5]), torch.tensor([10.0]), atol=0.4, rtol=0.0)


def test_check_close_names_the_worst_entry():
    want = torch.zeros(4)
    got = torch.tensor([0.0, 0.1, 3.0, 0.0])
    with pytest.raises(AssertionError, match=r"2 of 4 entries .* entry 2: expected 0, got 3"):
        check_close("v", got, want, atol=0.05)


def test_check_close_rejects_a_shape_that_only_broadcasts():
    with pytest.raises(AssertionError, match=r"expected shape \(4,\), got \(4, 1\)"):
        check_close("v", torch.zeros(4, 1), torch.zeros(4))


def test_check_close_rejects_nan_answers_and_nan_oracles():
    with pytest.raises(AssertionError, match="1 NaN or inf"):
        check_close("v", torch.tensor([0.0, float("nan")]), torch.zeros(2))
    with pytest.raises(ValueError, match="oracle itself"):
        check_close("v", torch.zeros(2), torch.tensor([0.0, float("nan")]))


def test_check_close_takes_numbers_and_detaches():
    check_close("pi", 3.14159, 3.14159)
    w = torch.ones(2, requires_grad=True)
    check_close("w", w * 2, torch.full((2,), 2.0))
    with pytest.raises(AssertionError, match="should be a tensor or a number, got str"):
        check_close("s", "1.0", 1.0)
    with pytest.raises(AssertionError, match="should be a tensor or a number, got NoneType"):
        check_close("n", None, 1.0)


def test_check_estimate_accepts_an_unbiased_estimate_and_rejects_a_biased_one(capsys):
    samples = 1.0 + torch.randn(10_000, generator=gen(1))  # mean 1, standard error 0.01
    check_estimate("mean", samples, 1.0)
    assert capsys.readouterr().out.startswith("✓ mean:")
    with pytest.raises(AssertionError, match="standard errors from the exact 1.1"):
        check_estimate("mean", samples, 1.1)  # 10 standard errors away


def test_check_estimate_needs_samples():
    with pytest.raises(AssertionError, match="at least 2 samples"):
        check_estimate("m", torch.tensor([1.0]), 1.0)
    with pytest.raises(AssertionError, match="NaN or inf"):
        check_estimate("m", torch.tensor([1.0, float("inf")]), 1.0)


def test_check_true(capsys):
    check_true("positive", 1 > 0, "should be positive")
    assert capsys.readouterr().out == "✓ positive\n"
    with pytest.raises(AssertionError, match="✗ negative: should be negative"):
        check_true("negative", torch.tensor(1.0) < 0, "should be negative")
