"""Chapter 6: score matching judged by the Fisher divergence to the exact score, and Langevin samplers
judged by the energy distance to fresh data against its floor.

The models are the recipes of notebooks 06a (`score_mlp` + `fit_score`, the same budget) and 06b
(`NoiseConditionalScore` + `fit_ncsn`, the same ladder, budget and sampler, final Tweedie step included).
"""
import math
import time

import torch

import dgm
from benchmarks.common import Row, timer
from dgm.data import eight_gaussians, two_modes, two_moons
from dgm.langevin import annealed_langevin, langevin
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.score_matching import (
    NoiseConditionalScore,
    dsm_loss,
    fisher_divergence,
    fit_ncsn,
    fit_score,
    hyvarinen_loss,
    score_mlp,
    sliced_loss,
)

N_TEST, CHUNKS = 5000, 5  # Fisher divergence on 5000 test points; time per step over 5 equal chunks of training
N_SAMPLES, N_LEVELS, N_EACH = 2000, 10, 100  # 2000 samples vs 2000 fresh points; 10 levels, 100 steps each
SCORE_UNIT = "1/2 E‖s − ∇log p‖²"


def chunk_clock(n_steps: int):
    """train's evaluate/every hook that stamps the clock after each of CHUNKS equal chunks, and a function
    giving the ms per step of each chunk as an estimate with its standard error (one training run)."""
    every = n_steps // CHUNKS
    stamps = [time.perf_counter()]
    hook = dict(evaluate=lambda model, step: stamps.append(time.perf_counter()), every=every)
    return hook, lambda: dgm.Estimate(torch.tensor(stamps, dtype=torch.float64).diff() / every * 1e3)


def score_matching_rows(make, device) -> list[Row]:
    p = make().to(device)
    g = dgm.seed_everything(0)
    x_test = p.sample(N_TEST, g)
    sigma = p.stds.min().item() / 2  # DSM noise: half the components' width
    objectives = {"Hyvarinen (exact trace)": lambda net, x: hyvarinen_loss(net, x),
                  "sliced (1 Gaussian projection, VR)": lambda net, x: sliced_loss(net, x, generator=g),
                  f"denoising, sigma={sigma:g}": lambda net, x: dsm_loss(net, x, sigma, generator=g)}
    n_steps = 1500  # fit_score's default, the budget of notebook 06a
    rows = []
    budget = f"score_mlp (MLP 2x128 SiLU), fit_score: {n_steps} Adam steps, batch 256, lr 0.005 cosine"
    for name, loss_fn in objectives.items():
        torch.manual_seed(0)
        with timer() as elapsed:
            net = score_mlp().to(device)
            hook, ms_per_step = chunk_clock(n_steps)
            fit_score(net, loss_fn, lambda b: p.sample(b, g), n_steps=n_steps, progress=False, **hook)
        wall = elapsed()
        with torch.no_grad():
            fisher = dgm.Estimate(fisher_divergence(net, p.score, x_test))
        common = dict(chapter=6, model=f"score MLP, {name}", dataset=make.__name__, wall_s=wall,
                      device=str(device), budget=budget)
        rows.append(Row.estimate(fisher, metric="Fisher divergence to the true score", limit=0.0, unit=SCORE_UNIT,
                                 **common))
        rows.append(Row.estimate(ms_per_step(), metric="time per training step", unit="ms", **common))
        if name.startswith("denoising"):  # what DSM actually targets: the score of the data noised at sigma
            x_noised = x_test + sigma * torch.randn(x_test.shape, generator=g).to(device)
            with torch.no_grad():
                target = dgm.Estimate(fisher_divergence(net, lambda x: p.noised_score(x, 1.0, sigma), x_noised))
            rows.append(Row.estimate(target, metric=f"Fisher divergence to the noised score (sigma={sigma:g})",
                                     limit=0.0, unit=SCORE_UNIT, **common))
    return rows


def langevin_rows(make, sigma_1, sigma_L, device, denoise=True) -> list[Row]:
    p = make().to(device)
    g = dgm.seed_everything(0)
    sigmas = torch.logspace(math.log10(sigma_1), math.log10(sigma_L), N_LEVELS)
    step_size = 0.1 * sigma_1**2
    floor = energy_distance_floor(lambda k: p.sample(k, g), N_SAMPLES, repeats=10)
    x0 = sigma_L * torch.randn(N_SAMPLES, 2, generator=g).to(device)

    def annealed(score):
        return annealed_langevin(score, x0, sigmas, step_size, N_EACH, generator=g, denoise=denoise)

    def with_network():
        torch.manual_seed(0)
        net = NoiseConditionalScore(2).to(device)
        fit_ncsn(net, lambda b: p.sample(b, g), sigmas, generator=g, progress=False)
        with torch.no_grad():
            return annealed(net)

    samplers = {"plain Langevin, exact score (eps 0.02, 500 steps)":
                lambda: langevin(p.score, x0 * 2 / sigma_L, 0.02, 500, generator=g),
                "annealed Langevin, exact noised scores": lambda: annealed(lambda x, s: p.noised_score(x, 1.0, s)),
                "annealed Langevin, NCSN (TimeMLP on log sigma, DSM over the ladder)": with_network}
    tweedie = ", final Tweedie step" if denoise else ""
    budget = (f"{N_LEVELS} levels {sigma_1:g}..{sigma_L:g}, {N_EACH} steps each, step {step_size:g} at sigma_1"
              f"{tweedie}; network fit_ncsn 1000 steps; se = spread of one floor draw; floor "
              f"{floor.value:.4f} ± {floor.se:.4f}")
    rows = []
    for name, sample in samplers.items():
        with timer() as elapsed:
            x = sample()
        wall = elapsed()
        rows.append(Row(chapter=6, model=name, dataset=make.__name__, metric=f"energy distance (n={N_SAMPLES})",
                        value=energy_distance(x, p.sample(N_SAMPLES, g)), se=floor.se * math.sqrt(10),
                        limit=floor.value, floor_se=floor.se, unit="energy distance", wall_s=wall,
                        device=str(device), budget=budget))
    return rows


def run(device: torch.device) -> list[Row]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in notebooks 06a/06b: networks this small are fastest on one CPU thread
    try:
        rows = []
        for make in (eight_gaussians, two_moons):
            rows += score_matching_rows(make, device)
        rows += langevin_rows(two_modes, 0.1, 5.0, device)
        rows += langevin_rows(eight_gaussians, 0.05, 4.0, device)
        return rows
    finally:
        torch.set_num_threads(threads)
