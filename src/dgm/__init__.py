"""dgm: the helper package of "Deep Generative Models: an executable textbook".

One module per topic of the book (`mle` for chapter 1, `flows` and `cnf` for chapter 2,
`autoregressive` for chapter 3, ...) plus shared modules: `data` (toy
densities with exact oracles; digits), `mnist` (optional, local IDX files), `metrics`,
`train`, `plotting`.
"""
from . import autoregressive, cnf, data, digits, flows, metrics, mle, mnist, nets, plotting, train
from .utils import Estimate, append_dims, get_device, seed_everything

__all__ = ["autoregressive", "cnf", "data", "digits", "flows", "metrics", "mle", "mnist", "nets", "plotting", "train",
           "Estimate", "append_dims", "get_device", "seed_everything"]
__version__ = "0.1.0"
