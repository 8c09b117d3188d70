"""Chapter 1: Gaussian mixtures fitted by maximum likelihood, judged by KL to the exact toy density.

The recipe is `dgm.mle.fit_mixture` with its defaults (600 full-batch Adam steps at lr 0.05), as in
notebooks/01_maximum_likelihood.ipynb; N = 10,000 training points, KL on 20,000 fresh test points.
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm.data import eight_gaussians, ring, swiss_roll, two_moons
from dgm.metrics import kl_divergence
from dgm.mle import GaussianMixtureModel, fit_mixture

N_TRAIN, N_TEST = 10_000, 20_000
COMPONENTS = (1, 16, 64)


def run(device: torch.device) -> list[Row]:
    rows = []
    for make in (eight_gaussians, two_moons, swiss_roll, ring):
        p = make().to(device)
        g = dgm.seed_everything(0)
        x_train, x_test = p.sample(N_TRAIN, g), p.sample(N_TEST, g)
        for K in COMPONENTS:
            with timer() as elapsed:
                model = GaussianMixtureModel(K, init_data=x_train, generator=g).to(device)
                fit_mixture(model, x_train, progress=False)
                kl = kl_divergence(p, model.log_prob, x_test)
            rows.append(Row.estimate(kl, chapter=1, model=f"Gaussian mixture K={K}, MLE", dataset=make.__name__,
                                     metric="KL(p ‖ q)", limit=0.0, unit="nats", wall_s=elapsed(),
                                     device=str(device),
                                     budget=f"N={N_TRAIN}, 600 full-batch Adam steps, lr=0.05"))
    return rows
