"""scikit-learn's 8x8 digits: the book's image data set, shipped with scikit-learn (no download).

1797 images with integer pixel values 0..16 (17 levels), split in file order into the first 1000
(train), the next 350 (val) and the last 447 (test). Likelihoods are reported in nats per image of
the *integer* data: a continuous density p_y on y = (x + u) / 17, u ~ U[0, 1)^D, gives
-log P(x) <= E_u[-log p_y(y)] + D log 17 (uniform dequantisation, by Jensen's inequality).
"""
import math
from functools import lru_cache

import torch

from .utils import check_levels

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
    check_levels(x, levels)
    u = torch.rand(x.shape, generator=generator).to(x.device)
    return (x + u) / levels


def nll_nats_per_image(log_prob_y: torch.Tensor, dim: int = DIGITS_DIM, levels: int = DIGITS_LEVELS) -> torch.Tensor:
    """Upper bound on -log P(x) in nats per integer image from log p_y(y) of dequantised y, shape (B,)."""
    if log_prob_y.ndim != 1:
        raise ValueError(f"log_prob_y must have shape (B,), got {tuple(log_prob_y.shape)}")
    return -log_prob_y + dim * math.log(levels)


def pixel_log_marginals(x: torch.Tensor, levels: int = DIGITS_LEVELS, smoothing: float = 1.0,
                        dtype: torch.dtype | None = None) -> torch.Tensor:
    """log q_i(v), each pixel's histogram of integer images x (N, D) with add-`smoothing` counts, (D, levels).

    The independent-pixel model of chapter 3, the reference of every digits likelihood (levels=2 for
    binarised images: add-one smoothing then gives P(on) = (count + 1) / (N + 2)).
    """
    check_levels(x, levels)
    if x.ndim != 2:
        raise ValueError(f"x must be a batch of flat images (N, D), got shape {tuple(x.shape)}")
    counts = torch.nn.functional.one_hot(x, levels).sum(0).to(dtype or torch.get_default_dtype()) + smoothing
    return torch.log(counts / counts.sum(1, keepdim=True))


def independent_pixel_nll(x: torch.Tensor, log_marginals: torch.Tensor) -> torch.Tensor:
    """-sum_i log q_i(x_i) in nats per image, (B,): the exact NLL of integer images x (B, D) under independent pixels.

    `log_marginals` (D, levels) comes from `pixel_log_marginals` of the training images.
    """
    if log_marginals.ndim != 2:
        raise ValueError(f"log_marginals must have shape (D, levels), got {tuple(log_marginals.shape)}")
    dim, levels = log_marginals.shape
    check_levels(x, levels)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (B, {dim}) to match log_marginals {tuple(log_marginals.shape)}, "
                         f"got {tuple(x.shape)}")
    return -log_marginals.gather(1, x.T.to(log_marginals.device)).sum(0)  # (B,)


# -- sample quality: a Fréchet distance in the feature space of a small digit classifier ----------
@lru_cache(maxsize=1)
def _classifier() -> torch.nn.Sequential:
    """A 64-128-128-10 MLP trained (seeded, on CPU, about a second) on the training split."""
    from torch import nn

    g = torch.Generator().manual_seed(0)
    x, y = load_digits("train")
    x = x.float() / (DIGITS_LEVELS - 1)
    net = nn.Sequential(nn.Linear(DIGITS_DIM, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():  # a seeded initialisation, independent of the global RNG
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.0 if p.ndim == 1 else 1 / math.sqrt(p.shape[1])))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    with torch.enable_grad():  # callers may be inside torch.no_grad()
        for _ in range(300):  # full-batch steps: 1000 images
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def features(x: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate activations (N, 128) of images on the 0..16 scale, shape (N, 64) or (N, 1, 8, 8)."""
    x = torch.as_tensor(x).detach().reshape(len(x), -1).float().cpu()
    if x.shape[1] != DIGITS_DIM or len(x) < 2:
        raise ValueError(f"x must hold N >= 2 images of {DIGITS_DIM} pixels, got shape {tuple(x.shape)}")
    x = x.clamp(0, DIGITS_LEVELS - 1) / (DIGITS_LEVELS - 1)  # samples may stray outside the pixel range
    return _classifier()[:-1](x)  # (N, 128)


def classifier_accuracy(split: str = "test") -> float:
    """Accuracy of the feature classifier on a split (it is only useful if it recognises digits)."""
    x, y = load_digits(split)
    x = x.float() / (DIGITS_LEVELS - 1)
    with torch.no_grad():
        return (_classifier()(x).argmax(1) == y).float().mean().item()


def _frechet(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^(1/2) S2 S1^(1/2))^(1/2)) between Gaussians fitted to two feature sets."""
    f1, f2 = f1.double(), f2.double()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    evals, evecs = torch.linalg.eigh(s1)
    root1 = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T  # S1^(1/2)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()  # tr (S1^(1/2) S2 S1^(1/2))^(1/2)
    return ((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross).item()


def frechet_distance(x: torch.Tensor) -> float:
    """Sample quality: Fréchet distance between the classifier features of x (0..16 scale) and of the training set.

    The value depends on the sample size: compare n = 447 samples with `frechet_floor()`.
    """
    return _frechet(features(x), features(load_digits("train")[0]))


def frechet_floor() -> float:
    """The floor of `frechet_distance`: the 447 held-out test images against the training set."""
    return frechet_distance(load_digits("test")[0])
