"""MNIST from a local folder of the standard IDX files: an option for GPU readers (nothing downloads).

The book's image data are the 8x8 digits (`dgm.digits`); MNIST (28x28, values 0..255) is for
readers with a GPU who fetch the four files themselves (gzipped or not):
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
"""
import gzip
from pathlib import Path

import numpy as np
import torch

MNIST_LEVELS = 256
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file: magic (0, 0, dtype code, ndim), ndim big-endian int32 sizes, then the data."""
    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (expected magic bytes 0, 0, dtype code, ndim)")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(folder: str | Path, split: str = "train", flat: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer images (N, 784) (or (N, 1, 28, 28) with flat=False), values 0..255, and labels (N,)."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    arrays = []
    for name in _FILES[split]:
        candidates = [Path(folder) / name, Path(folder) / f"{name}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ValueError(f"{name}[.gz] not found in {folder}: place the MNIST IDX files there")
        arrays.append(read_idx(found))
    images, labels = (torch.from_numpy(a.astype(np.int64)) for a in arrays)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"images (N, H, W) and labels (N,) expected, got {tuple(images.shape)}, {tuple(labels.shape)}")
    return (images.flatten(1) if flat else images[:, None]), labels
