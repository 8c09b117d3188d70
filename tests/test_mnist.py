"""dgm.mnist: the IDX reader on small files the test writes (plain and gzipped), and bad files."""
import gzip
import struct

import numpy as np
import pytest
import torch

from dgm.digits import dequantize, nll_nats_per_image
from dgm.mnist import MNIST_LEVELS, load_mnist, read_idx


def write_idx(path, array, code=0x08, compress=False):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    (gzip.open if compress else open)(path, "wb").write(header + array.tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_what_was_written(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress=compress)
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (5, 784) and x.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(images.reshape(5, -1).astype(np.int64)))
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert load_mnist(tmp_path, "test", flat=False)[0].shape == (5, 1, 28, 28)
    # 256 levels: dequantised pixels stay in their bins, and a uniform model costs 784 log 256 nats
    yq = dequantize(x, torch.Generator().manual_seed(0), levels=MNIST_LEVELS)
    assert torch.equal(torch.floor(yq * MNIST_LEVELS).long(), x)
    assert nll_nats_per_image(torch.zeros(1), dim=784, levels=256).item() == pytest.approx(784 * np.log(256))


def test_read_idx_big_endian_types(tmp_path):
    values = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "ints", values, code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), values)


def test_bad_files_raise_value_error(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "short", np.zeros((2, 2), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="not found"):
        load_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist(tmp_path, "validation")
