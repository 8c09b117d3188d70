"""Chapter 2: a continuous normalizing flow (fixed-step RK4) judged by KL to the exact toy density.

The recipe of notebooks/02c_continuous_flows.ipynb, `dgm.cnf.fit_cnf` with its defaults: batches of 128
fresh samples, 400 Adam steps at lr 1e-2 then 200 at 2e-3, 8 RK4 steps per solve. Trained with the exact
trace (as in the notebook) or with Hutchinson's estimator (Rademacher probes, the notebook's second
half compares the two); the KL always uses the exact-trace log-density with 8 RK4 steps.
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm.cnf import CNF, fit_cnf
from dgm.data import eight_gaussians, two_moons
from dgm.metrics import kl_divergence

N_TEST, HIDDEN, SOLVER_STEPS = 10_000, 64, 8


def fit_and_score(make, exact: bool, device: torch.device) -> Row:
    p = make().to(device)
    g = dgm.seed_everything(0)
    x_test = p.sample(N_TEST, g)
    with timer() as elapsed:
        model = CNF(2, hidden=HIDDEN).to(device)
        fit_cnf(model, lambda b: p.sample(b, g), solver_steps=SOLVER_STEPS, exact=exact, generator=g,
                progress=False)
        kl = kl_divergence(p, lambda x: model.log_prob(x, n_steps=SOLVER_STEPS), x_test)
    trace = "exact trace" if exact else "Hutchinson (Rademacher)"
    return Row.estimate(kl, chapter=2, model=f"CNF (MLP {HIDDEN}x2, tanh), {trace}", dataset=make.__name__,
                        metric="KL(p ‖ q)", limit=0.0, unit="nats", wall_s=elapsed(), device=str(device),
                        budget=f"600 Adam steps (400 at lr 1e-2, 200 at 2e-3), batch 128, {SOLVER_STEPS} RK4 steps")


def run(device: torch.device) -> list[Row]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in notebook 02c: a net this small is fastest on one CPU thread
    try:
        return [fit_and_score(make, exact, device) for exact in (True, False)
                for make in (two_moons, eight_gaussians)]
    finally:
        torch.set_num_threads(threads)
