"""Chapter 6: score matching judged by the Fisher divergence to the exact score, and Langevin samplers
judged by the energy distance to fresh data against its floor."""
import math
import time

import torch

import dgm
from dgm.data import GaussianMixture, eight_gaussians, two_moons
from dgm.langevin import annealed_langevin, langevin
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.nets import MLP
from dgm.score_matching import (NoiseConditionalScore, dsm_loss, fisher_divergence, hyvarinen_loss, ncsn_loss,
                                sliced_loss)

# The budget of notebook 06a: an MLP (2 x 128 SiLU), batches of 256 fresh samples, 1500 Adam steps at
# lr 5e-3 with cosine decay; Fisher divergence 1/2 E||s - grad log p||^2 on 5000 test points.
N_STEPS, BATCH, LR, N_TEST, CHUNKS = 1500, 256, 5e-3, 5000, 5
# The budget of notebook 06b: 10 geometric levels, 100 Langevin steps each, step 0.1 sigma_1^2 at the
# lowest level; the network trained 1000 steps; 2000 samples against 2000 fresh points, floor of 10 repeats.
N_NCSN, N_SAMPLES, N_EACH = 1000, 2000, 100
SCORE_UNIT = "1/2 E‖s − ∇log p‖²"


def two_modes() -> GaussianMixture:
    """Notebook 6b's mixture: weights 0.2 / 0.8 at (-2.5, 0) and (2.5, 0), std 0.5."""
    return GaussianMixture(torch.tensor([[-2.5, 0.0], [2.5, 0.0]]), 0.5, torch.tensor([0.2, 0.8]))


def train_timed(net, loss_fn, p, g, n_steps, lr=LR):
    """Adam with cosine decay, run in CHUNKS equal parts so the time per step comes with a standard error."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
    ms_per_step = []
    for _ in range(CHUNKS):
        start = time.perf_counter()
        dgm.train.train(net, loss_fn, lambda b: p.sample(b, g), n_steps // CHUNKS, BATCH, optimizer=optimizer,
                        scheduler=schedule, progress=False)
        ms_per_step.append((time.perf_counter() - start) / (n_steps // CHUNKS) * 1e3)
    return dgm.Estimate(torch.tensor(ms_per_step))


def score_matching_rows(make, device) -> list[dict]:
    p = make().to(device)
    g = dgm.seed_everything(0)
    x_test = p.sample(N_TEST, g)
    sigma = p.stds.min().item() / 2  # DSM noise: half the components' width
    objectives = {"Hyvarinen (exact trace)": lambda net, x: hyvarinen_loss(net, x),
                  "sliced (1 Gaussian projection, VR)": lambda net, x: sliced_loss(net, x, generator=g),
                  f"denoising, sigma={sigma:g}": lambda net, x: dsm_loss(net, x, sigma, generator=g)}
    rows = []
    budget = f"MLP 2x128 SiLU, {N_STEPS} Adam steps, batch {BATCH}, lr {LR} cosine"
    for name, loss_fn in objectives.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        net = MLP(2, 2, hidden=128, n_hidden=2).to(device)
        ms = train_timed(net, loss_fn, p, g, N_STEPS)
        wall = time.perf_counter() - start
        with torch.no_grad():
            fisher = dgm.Estimate(fisher_divergence(net, p.score, x_test))
        common = dict(chapter=6, model=f"score MLP, {name}", dataset=make.__name__, wall_s=wall, device=str(device),
                      budget=budget)
        rows.append(dict(common, metric="Fisher divergence to the true score", value=fisher.value, se=fisher.se,
                         limit=0.0, unit=SCORE_UNIT))
        rows.append(dict(common, metric="time per training step", value=ms.value, se=ms.se, limit=None, unit="ms"))
        if name.startswith("denoising"):  # what DSM actually targets: the score of the data noised at sigma
            x_noised = x_test + sigma * torch.randn(x_test.shape, generator=g).to(device)
            with torch.no_grad():
                target = dgm.Estimate(fisher_divergence(net, lambda x: p.noised_score(x, 1.0, sigma), x_noised))
            rows.append(dict(common, metric=f"Fisher divergence to the noised score (sigma={sigma:g})",
                             value=target.value, se=target.se, limit=0.0, unit=SCORE_UNIT))
    return rows


def langevin_rows(make, sigma_1, sigma_L, device) -> list[dict]:
    p = make().to(device)
    g = dgm.seed_everything(0)
    sigmas = torch.logspace(math.log10(sigma_1), math.log10(sigma_L), 10)
    step_size = 0.1 * sigma_1**2
    floor = energy_distance_floor(lambda k: p.sample(k, g), N_SAMPLES, repeats=10)
    x0 = sigma_L * torch.randn(N_SAMPLES, 2, generator=g).to(device)
    samplers = {"plain Langevin, exact score (eps 0.02, 500 steps)":
                lambda: langevin(p.score, x0 * 2 / sigma_L, 0.02, 500, generator=g),
                "annealed Langevin, exact noised scores":
                lambda: annealed_langevin(lambda x, s: p.noised_score(x, 1.0, s), x0, sigmas, step_size, N_EACH,
                                          generator=g)}

    def with_network():
        torch.manual_seed(0)
        net = NoiseConditionalScore(2, hidden=128).to(device)
        train_timed(net, lambda m, x: ncsn_loss(m, x, sigmas, generator=g), p, g, N_NCSN)
        with torch.no_grad():
            return annealed_langevin(net, x0, sigmas, step_size, N_EACH, generator=g)

    samplers["annealed Langevin, NCSN (TimeMLP on log sigma, DSM over the ladder)"] = with_network
    rows = []
    for name, sample in samplers.items():
        start = time.perf_counter()
        x = sample()
        wall = time.perf_counter() - start
        rows.append(dict(chapter=6, model=name, dataset=make.__name__, metric=f"energy distance (n={N_SAMPLES})",
                         value=energy_distance(x, p.sample(N_SAMPLES, g)), se=floor.se * math.sqrt(10),
                         limit=floor.value, floor_se=floor.se, unit="energy distance", wall_s=wall,
                         device=str(device),
                         budget=f"10 levels {sigma_1:g}..{sigma_L:g}, {N_EACH} steps each, step {step_size:g} at "
                                f"sigma_1; network {N_NCSN} steps; se = spread of one floor draw; floor "
                                f"{floor.value:.4f} ± {floor.se:.4f}"))
    return rows


def run(device: torch.device) -> list[dict]:
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
