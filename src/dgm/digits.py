"""scikit-learn's 8x8 digits: the book's image data set, shipped with scikit-learn (no download).

1797 images with integer pixel values 0..16 (17 levels), split in file order into the first 1000
(train), the next 350 (val) and the last 447 (test). Likelihoods are reported in nats per image of
the *integer* data: a continuous density p_y on y = (x + u) / 17, u ~ U[0, 1)^D, gives
-log P(x) <= E_u[-log p_y(y)] + D log 17 (uniform dequantisation, by Jensen's inequality).
"""
import math
from functools import lru_cache

import torch

DIGITS_LEVELS = 17  # pixel values 0..16
DIGITS_SHAPE = (1, 8, 8)
DIGITS_DIM = 64
DIGITS_SPLITS = {"train": (0, 1000), "val": (1000, 1350), "test": (1350, 1797)}


@lru_cache(maxsize=1)
def _all_digits():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return torch.from_numpy(bunch.data).long(), torch.from_numpy(bunch.target).long()  # (1797, 64), (1797,)


def load_digits(split: str = "train", flat: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer images (N, 64) (or (N, 1, 8, 8) with flat=False) with values 0..16, and labels (N,)."""
    if split not in DIGITS_SPLITS:
        raise ValueError(f"split must be one of {sorted(DIGITS_SPLITS)}, got {split!r}")
    start, stop = DIGITS_SPLITS[split]
    x, y = _all_digits()
    x, y = x[start:stop].clone(), y[start:stop].clone()
    return (x if flat else x.reshape(-1, *DIGITS_SHAPE)), y


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None,
               levels: int = DIGITS_LEVELS) -> torch.Tensor:
    """Uniform dequantisation y = (x + u) / levels, u ~ U[0, 1): integer pixels -> floats in [0, 1)."""
    if x.is_floating_point() or x.numel() == 0 or x.min() < 0 or x.max() >= levels:
        raise ValueError(f"x must hold integers in 0..{levels - 1}, got dtype {x.dtype}"
                         + (f" with range [{x.min()}, {x.max()}]" if x.numel() else " (empty)"))
    u = torch.rand(x.shape, generator=generator).to(x.device)
    return (x + u) / levels


def nll_nats_per_image(log_prob_y: torch.Tensor, dim: int = DIGITS_DIM, levels: int = DIGITS_LEVELS) -> torch.Tensor:
    """Upper bound on -log P(x) in nats per integer image from log p_y(y) of dequantised y, shape (B,)."""
    if log_prob_y.ndim != 1:
        raise ValueError(f"log_prob_y must have shape (B,), got {tuple(log_prob_y.shape)}")
    return -log_prob_y + dim * math.log(levels)
