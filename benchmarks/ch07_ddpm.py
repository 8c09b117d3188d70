"""Chapter 7: DDPM (eps-network trained with L_simple, T = 1000 linear betas) on two toy sets and on digits.

Toy rows: energy distance of ancestral samples to fresh data, with the network's eps and with the exact
eps = -sigma_t grad log q_t of the Gaussian mixture (no network error: what is left is the sampler's),
next to the data-vs-data floor. Digits rows: Fréchet distance of classifier features (n = 447 per batch)
for ancestral and DDIM samples, next to `frechet_floor()` (the test images).

The recipe is notebook 07's (`diffusion.EpsNetwork`, `fit_ddpm`, `fit_digits_ddpm`); the benchmark passes
a larger budget to the same functions, because the notebook must run in about 25 s on a CPU while the
table should show what the recipe reaches: 4000 toy steps instead of 2000 (same width, batch and lr), and
on digits 4000 steps of 256 images on a 512-wide network at lr 2e-3 instead of 2000 steps of 128 on 256
units at lr 5e-3 (the budget that takes the DDIM samples to the Fréchet floor; the lower learning rate
goes with the longer run and the wider network).
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm import diffusion
from dgm.data import eight_gaussians, two_moons
from dgm.digits import frechet_distance, frechet_floor, load_digits
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.parameterisations import from_grid, to_grid

T = 1000
TOY = dict(n_steps=4000)  # the notebook's toy recipe (batch 256, lr 1e-2) with twice its steps
TOY_HIDDEN = 128  # EpsNetwork's default width, the notebook's
DIGITS = dict(n_steps=4000, batch_size=256, lr=2e-3)  # and its digits recipe with the larger budget (see above)
DIGITS_HIDDEN = 512
N_TOY, CHUNKS = 1000, 5  # energy distance on chunks of 1000 samples, 5 chunks per row (-> value ± se)
N_DIGITS, DIGIT_CHUNKS = 447, 3  # Fréchet distance on 447 samples, like the floor's 447 test images


def toy_rows(make, betas, device) -> list[Row]:
    """The network and the exact-eps rows of one toy data set."""
    p, g = make().to(device), dgm.seed_everything(0)

    def sample_data(m):
        return p.sample(m, g)

    floor = energy_distance_floor(sample_data, N_TOY, repeats=10)
    with timer() as elapsed:
        net = diffusion.EpsNetwork(2, T, hidden=TOY_HIDDEN).to(device)
        diffusion.fit_ddpm(net, sample_data, betas, generator=g, progress=False, **TOY)
    wall, rows = elapsed(), []
    samplers = {f"DDPM eps-network (TimeMLP {TOY_HIDDEN}x3), ancestral T={T}": net,
                f"DDPM exact eps (mixture oracle), ancestral T={T}": diffusion.exact_eps_model(p, betas)}
    for name, eps_model in samplers.items():
        with timer() as elapsed:
            x = diffusion.ancestral_sample(eps_model, (N_TOY * CHUNKS, 2), betas, generator=g, device=device)
            ed = dgm.Estimate(torch.tensor([energy_distance(chunk, sample_data(N_TOY)) for chunk in x.split(N_TOY)]))
        budget = (f"{TOY['n_steps']} Adam steps of 256 fresh points, lr=0.01 (cosine)"
                  if "network" in name else "no training: exact eps")
        rows.append(Row.estimate(ed, chapter=7, model=name, dataset=make.__name__,
                                 metric=f"energy distance (n={N_TOY})", limit=floor.value, floor_se=floor.se,
                                 unit="energy distance", wall_s=wall + elapsed(), device=str(device),
                                 budget=f"{budget}; {CHUNKS} x {N_TOY} samples vs fresh data; "
                                        f"floor {floor.value:.4f} ± {floor.se:.4f}"))
        wall = 0.0  # the training time goes with the network's row
    return rows


def run(device: torch.device) -> list[Row]:
    betas = diffusion.linear_betas(T)
    rows = toy_rows(two_moons, betas, device) + toy_rows(eight_gaussians, betas, device)

    g = dgm.seed_everything(0)
    x_train = to_grid(load_digits("train")[0]).to(device)  # (1000, 64) in [-1, 1]
    with timer() as elapsed:
        net = diffusion.EpsNetwork(64, T, hidden=DIGITS_HIDDEN).to(device)
        diffusion.fit_digits_ddpm(net, x_train, betas, generator=g, progress=False, **DIGITS)
    train_s, floor = elapsed(), frechet_floor()
    shape = (N_DIGITS * DIGIT_CHUNKS, 64)
    samplers = {f"DDPM eps-network (TimeMLP {DIGITS_HIDDEN}x3), ancestral T={T}":
                lambda: diffusion.ancestral_sample(net, shape, betas, generator=g, device=device),
                f"DDPM eps-network (TimeMLP {DIGITS_HIDDEN}x3), DDIM 50 steps":
                lambda: diffusion.ddim_sample(net, shape, betas, 50, generator=g, device=device)}
    for name, sample in samplers.items():
        with timer() as elapsed:
            x = from_grid(sample())  # back to the 0..16 scale
            fd = dgm.Estimate(torch.tensor([frechet_distance(chunk) for chunk in x.split(N_DIGITS)]))
        rows.append(Row.estimate(fd, chapter=7, model=name, dataset="digits",
                                 metric=f"Fréchet distance ({N_DIGITS} samples)", limit=floor, floor_se=0.0,
                                 unit="classifier features", wall_s=train_s + elapsed(), device=str(device),
                                 budget=f"{DIGITS['n_steps']} Adam steps of {DIGITS['batch_size']}, "
                                        f"lr={DIGITS['lr']} (cosine); {DIGIT_CHUNKS} x {N_DIGITS} samples; "
                                        "floor = 447 test images"))
    return rows
