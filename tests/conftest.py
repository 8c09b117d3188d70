import torch

# Tests run on two CPU cores in CI; more threads only add contention.
torch.set_num_threads(2)


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator: every random draw in the tests is reproducible."""
    return torch.Generator().manual_seed(seed)
