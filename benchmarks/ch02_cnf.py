"""Chapter 2: a continuous normalizing flow (exact trace, fixed-step RK4) judged by KL to the exact toy density."""
import time

import torch

import dgm
from dgm.cnf import CNF
from dgm.data import eight_gaussians, two_moons
from dgm.metrics import kl_divergence

# The budget of notebook 02c: batches of 128 fresh samples, 400 Adam steps at lr 1e-2 then 200 at 2e-3,
# 8 RK4 steps per solve (training and evaluation). Trained with the exact trace (as in the notebook) or
# with Hutchinson's estimator (Rademacher probes); the KL always uses the exact-trace log-density.
N_TEST, BATCH, SCHEDULE, N_STEPS, HIDDEN = 10_000, 128, ((400, 1e-2), (200, 2e-3)), 8, 64


def fit_and_score(make, exact: bool, device: torch.device) -> dict:
    p = make().to(device)
    g = dgm.seed_everything(0)
    x_test = p.sample(N_TEST, g)
    start = time.perf_counter()
    model = CNF(2, hidden=HIDDEN).to(device)
    for n_steps, lr in SCHEDULE:
        dgm.train.train(model, lambda m, x: -m.log_prob(x, n_steps=N_STEPS, exact=exact, generator=g),
                        lambda b: p.sample(b, g), n_steps=n_steps, batch_size=BATCH, lr=lr, progress=False)
    kl = kl_divergence(p, lambda x: model.log_prob(x, n_steps=N_STEPS), x_test)
    trace = "exact trace" if exact else "Hutchinson (Rademacher)"
    return dict(chapter=2, model=f"CNF (MLP {HIDDEN}x2, tanh), {trace}", dataset=make.__name__,
                metric="KL(p ‖ q)", value=kl.value, se=kl.se, limit=0.0, unit="nats",
                wall_s=time.perf_counter() - start, device=str(device),
                budget=f"600 Adam steps (400 at lr 1e-2, 200 at 2e-3), batch {BATCH}, {N_STEPS} RK4 steps")


def run(device: torch.device) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in notebook 02c: a net this small is fastest on one CPU thread
    try:
        return [fit_and_score(make, exact, device) for exact in (True, False)
                for make in (two_moons, eight_gaussians)]
    finally:
        torch.set_num_threads(threads)
