"""dgm: the helper package of "Deep Generative Models: an executable textbook".

One module per topic of the book (`mle` for chapter 1, `flows` and `cnf` for chapter 2,
`autoregressive` for chapter 3, `variational` and `vae` for chapter 4, `ebm` and `gan` for
chapter 5, `score_matching` and `langevin` for chapter 6, `diffusion` for chapter 7, `vdm` for
chapter 8) plus shared modules: `data` (toy densities with exact oracles), `digits`, `mnist`
(optional, local IDX files), `nets`, `metrics`, `train`, `plotting`.
"""
from . import (autoregressive, cnf, data, diffusion, digits, ebm, flows, gan, langevin, metrics, mle, mnist, nets,
               plotting, score_matching, train, vae, variational, vdm)
from .utils import Estimate, append_dims, get_device, seed_everything

__all__ = ["autoregressive", "cnf", "data", "diffusion", "digits", "ebm", "flows", "gan", "langevin", "metrics", "mle",
           "mnist", "nets", "plotting", "score_matching", "train", "vae", "variational", "vdm",
           "Estimate", "append_dims", "get_device", "seed_everything"]
__version__ = "0.1.0"
