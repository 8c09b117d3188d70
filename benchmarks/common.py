"""The one definition of a result row, read by `benchmarks/run.py` (results.json and the Results page)."""
import dataclasses
import time
from contextlib import contextmanager

import torch

import dgm
from dgm.metrics import bits_per_dim


@dataclasses.dataclass
class Row:
    """One model on one data set: a metric with its standard error, next to its limit (or floor)."""

    chapter: int
    model: str
    dataset: str
    metric: str
    value: float
    se: float
    unit: str
    wall_s: float
    device: str
    budget: str  # what the model was given: steps, batch, learning rate, sample sizes
    limit: float | None = None  # the best possible value (0 for a KL), a floor (data vs data), None: unknown
    floor_se: float | None = None  # the standard error of a floor measured by Monte Carlo
    bits_per_dim: float | None = None  # digits likelihoods: the value again in bits per dimension

    def __post_init__(self):
        for name in ("value", "se", "wall_s"):
            if not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"Row.{name} must be a float, got {type(getattr(self, name)).__name__}")

    @classmethod
    def estimate(cls, est: dgm.Estimate, **fields) -> "Row":
        """A row whose value ± se is a Monte Carlo estimate (a KL, a mean over test points or sample sets)."""
        return cls(value=est.value, se=est.se, **fields)

    @classmethod
    def nll(cls, nats: torch.Tensor, dim: int = 64, metric: str = "test NLL", dataset: str = "digits (test)",
            **fields) -> "Row":
        """A digits likelihood row from per-image nats (N,): mean ± se in nats/image, and bits/dim."""
        est = dgm.Estimate(nats)
        return cls(value=est.value, se=est.se, metric=metric, dataset=dataset, unit="nats/image",
                   bits_per_dim=bits_per_dim(est.value, dim), **fields)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@contextmanager
def timer():
    """`with timer() as elapsed: ...; elapsed()` gives the seconds since the block began."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start
