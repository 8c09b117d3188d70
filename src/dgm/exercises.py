"""Checks for the notebooks' "Your turn" exercises: an answer against the book's exact oracle.

Each check prints one line starting with a tick when the answer is right, and raises AssertionError
with what was expected and what was given when it is not, so a student edition (where the answer is a
stub that raises NotImplementedError) fails loudly and the instructor edition passes.
"""
import math

import torch


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double()
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise AssertionError(f"{name} should be a tensor or a number, got {type(value).__name__}") from error


def check_close(name: str, answer, expected, *, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Pass when `answer` has `expected`'s shape and |answer - expected| <= atol + rtol |expected| everywhere."""
    got, want = _as_tensor(answer, f"{name} (your answer)"), _as_tensor(expected, f"{name} (the oracle)")
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"✗ {name}: expected shape {tuple(want.shape)}, got {tuple(got.shape)} "
                             f"(a shape that broadcasts is still wrong)")
    if not torch.isfinite(want).all():  # a NaN oracle would compare False everywhere and pass any answer
        raise ValueError(f"{name}: the oracle itself has NaN or inf entries; the check cannot judge an answer")
    if not torch.isfinite(got).all():
        raise AssertionError(f"✗ {name}: your answer has {int((~torch.isfinite(got)).sum())} NaN or inf entries")
    error = (got - want).abs()
    bad = error > atol + rtol * want.abs()
    if bad.any():
        i = int(error.flatten().argmax())
        raise AssertionError(f"✗ {name}: {int(bad.sum())} of {got.numel()} entries differ from the oracle; "
                             f"the worst is entry {i}: expected {want.flatten()[i].item():.6g}, "
                             f"got {got.flatten()[i].item():.6g}")
    print(f"✓ {name}: matches the oracle (max abs error {error.max().item() if error.numel() else 0.0:.2g})")


def check_estimate(name: str, samples, expected: float, *, n_sigma: float = 4.0) -> None:
    """Pass when the mean of Monte Carlo `samples` (N,) is within n_sigma standard errors of `expected`."""
    x = _as_tensor(samples, f"{name} (your samples)").flatten()
    if x.numel() < 2:
        raise AssertionError(f"✗ {name}: need at least 2 samples for a standard error, got {x.numel()}")
    if not torch.isfinite(x).all():
        raise AssertionError(f"✗ {name}: your samples hold NaN or inf")
    mean, se = x.mean().item(), x.std().item() / math.sqrt(x.numel())
    if abs(mean - expected) > n_sigma * se + 1e-12:
        distance = abs(mean - expected) / max(se, 1e-300)
        raise AssertionError(f"✗ {name}: the estimate {mean:.5g} ± {se:.2g} (standard error) is "
                             f"{distance:.1f} standard errors from the exact {expected:.5g}")
    print(f"✓ {name}: {mean:.5g} ± {se:.2g}, within {n_sigma:g} standard errors of the exact {expected:.5g}")


def check_true(name: str, condition: bool, hint: str) -> None:
    """Pass when `condition` holds; otherwise say what should have held (`hint`)."""
    if not bool(condition):
        raise AssertionError(f"✗ {name}: {hint}")
    print(f"✓ {name}")
