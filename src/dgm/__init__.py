"""dgm: the helper package of "Deep Generative Models: an executable textbook".

One module per topic of the book (`mle` for chapter 1, `flows` and `cnf` for chapter 2,
`autoregressive` for chapter 3, `variational` and `vae` for chapter 4, `rbm`, `ebm` and `gan` for
chapter 5, `score_matching` and `langevin` for chapter 6, `diffusion` for chapter 7, `vdm` for
chapter 8, with `parameterisations` holding what chapters 7 and 8 share: the x0 / eps / score / v
conversions and the log-SNR schedules) plus shared modules: `data` (toy densities with exact
oracles), `digits`, `mnist` (optional, local IDX files), `nets`, `metrics`, `train`, `plotting`,
`utils` (devices, seeding and the input checks).
"""
from . import (
    autoregressive,
    cnf,
    data,
    diffusion,
    digits,
    ebm,
    flows,
    gan,
    langevin,
    metrics,
    mle,
    mnist,
    nets,
    parameterisations,
    plotting,
    rbm,
    score_matching,
    train,
    vae,
    variational,
    vdm,
)
from .utils import Estimate, append_dims, get_device, seed_everything

__all__ = ["autoregressive", "cnf", "data", "diffusion", "digits", "ebm", "flows", "gan", "langevin", "metrics", "mle",
           "mnist", "nets", "parameterisations", "plotting", "rbm", "score_matching", "train", "vae", "variational",
           "vdm", "Estimate", "append_dims", "get_device", "seed_everything"]
__version__ = "0.1.0"
