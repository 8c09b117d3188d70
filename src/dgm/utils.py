"""Device choice, seeding, broadcasting and the input checks every module shares."""
import math
import random

import numpy as np
import torch


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's `random`, NumPy and torch (all devices) with one call; returns a CPU generator."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    return torch.Generator().manual_seed(seed)


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton axes so a per-example (B,) tensor broadcasts against an `ndim` batch."""
    if t.ndim > ndim:
        raise ValueError(f"cannot broadcast a tensor with {t.ndim} dims to {ndim} dims")
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) over the last axis: (..., D) -> (...); the base density of flows, CNFs and VAE priors."""
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def check_batch(x: torch.Tensor, dim: int, name: str = "x") -> None:
    """Raise ValueError unless `x` is a float (B, dim) batch."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, {dim}), got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (B, {dim}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_positive_int(value, name: str) -> None:
    """Raise ValueError unless `value` is an int >= 1 (a bool is not a count)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) noise of x's shape and dtype, drawn on the CPU with `generator` (reproducible anywhere), then moved."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ValueError unless a and b are tensors of the same shape (no silent broadcasting); names both shapes.

    Callers pass a function's output as `a` (a score, an eps prediction): one that returns something other
    than a tensor gets the same clear error.
    """
    for value, name in ((a, name_a), (b, name_b)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {name_a} {tuple(a.shape)} "
                         f"and {name_b} {tuple(b.shape)}")


def per_example(value, x: torch.Tensor, name: str, broadcast: bool = False) -> torch.Tensor:
    """A float or a per-example (B,) tensor, checked against the batch x, as a (B,) tensor of x's dtype and device.

    With broadcast=True the result is (B, 1, ..., 1), ready to multiply x of any shape (Rule 5 of STYLE.md).
    """
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != x.shape[0]):
        raise ValueError(f"{name} must be a float or have shape (B,)=({x.shape[0]},) for a batch of shape "
                         f"{tuple(x.shape)}, got {name} of shape {tuple(v.shape)}")
    v = v.expand(x.shape[0])
    return append_dims(v, x.ndim) if broadcast else v


def check_levels(x: torch.Tensor, levels: int, name: str = "x") -> None:
    """Raise ValueError unless x is a non-empty integer tensor with values in 0..levels-1 (e.g. digit pixels)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be an integer torch.Tensor with values in 0..{levels - 1}, "
                         f"got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers in 0..{levels - 1}, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must hold integers in 0..{levels - 1}, got an empty tensor")
    if x.min() < 0 or x.max() >= levels:
        raise ValueError(f"{name} must hold integers in 0..{levels - 1}, got values in [{x.min()}, {x.max()}]")


def check_positive(value, name: str) -> None:
    """Raise ValueError unless every entry of `value` is finite and > 0."""
    v = torch.as_tensor(value)
    if not bool(torch.all(torch.isfinite(v) & (v > 0))):
        raise ValueError(f"{name} must be finite and > 0, got {value}")


class Estimate:
    """A Monte Carlo estimate with its standard error: `value ± se` (se = sample std / sqrt(n))."""

    def __init__(self, samples: torch.Tensor):
        samples = samples.detach().double().flatten()
        if samples.numel() < 2:
            raise ValueError(f"an estimate needs at least 2 samples, got {samples.numel()}")
        self.n = samples.numel()
        self.value = samples.mean().item()
        self.se = (samples.std() / self.n**0.5).item()

    def __repr__(self) -> str:
        return f"{self.value:.4f} ± {self.se:.4f}"
