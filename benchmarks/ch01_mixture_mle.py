"""Chapter 1: Gaussian mixtures fitted by maximum likelihood, judged by KL to the exact toy density."""
import time

import torch

import dgm
from dgm.data import eight_gaussians, ring, swiss_roll, two_moons
from dgm.metrics import kl_divergence
from dgm.mle import GaussianMixtureModel, nll

N_TRAIN, N_TEST, N_STEPS, LR = 10_000, 20_000, 600, 0.05  # the fixed budget of every row
COMPONENTS = (1, 16, 64)


def run(device: torch.device) -> list[dict]:
    rows = []
    for make in (eight_gaussians, two_moons, swiss_roll, ring):
        p = make().to(device)
        g = dgm.seed_everything(0)
        x_train, x_test = p.sample(N_TRAIN, g), p.sample(N_TEST, g)
        for K in COMPONENTS:
            start = time.perf_counter()
            model = GaussianMixtureModel(K, init_data=x_train, generator=g).to(device)
            dgm.train.train(model, nll, x_train, n_steps=N_STEPS, batch_size=None, lr=LR, progress=False)
            kl = kl_divergence(p, model.log_prob, x_test)
            rows.append(dict(chapter=1, model=f"Gaussian mixture K={K}, MLE", dataset=make.__name__,
                             metric="KL(p ‖ q)", value=kl.value, se=kl.se, limit=0.0,
                             unit="nats", wall_s=time.perf_counter() - start, device=str(device),
                             budget=f"N={N_TRAIN}, {N_STEPS} full-batch Adam steps, lr={LR}"))
    return rows
