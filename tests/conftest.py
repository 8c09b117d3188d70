import torch

# The tests' tensors are small: one thread avoids thread start-up and contention costs that
# dominate at this size (and keeps timings stable on a shared 2-core machine).
torch.set_num_threads(1)


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator: every random draw in the tests is reproducible."""
    return torch.Generator().manual_seed(seed)
