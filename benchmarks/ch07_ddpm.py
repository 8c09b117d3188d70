"""Chapter 7: DDPM (eps-network trained with L_simple, T = 1000 linear betas) on two toy sets and on digits.

Toy rows: energy distance of ancestral samples to fresh data, with the network's eps and with the exact
eps = -sigma_t grad log q_t of the Gaussian mixture (no network error: what is left is the sampler's),
next to the data-vs-data floor. Digits rows: Fréchet distance of classifier features (n = 447 per batch)
for ancestral and DDIM samples, next to `frechet_floor()` (the test images). A longer budget than
notebooks/07_ddpm.ipynb (4000 toy steps; 4000 digit steps of 256 with 512 hidden units).
"""
import time

import torch

import dgm
from dgm import diffusion
from dgm.data import eight_gaussians, two_moons
from dgm.digits import frechet_distance, frechet_floor, load_digits
from dgm.metrics import energy_distance, energy_distance_floor
from dgm.nets import TimeMLP

T = 1000
TOY = dict(n_steps=4000, batch_size=256, lr=1e-2, hidden=128)  # the fixed toy budget
DIGITS = dict(n_steps=4000, batch_size=256, lr=2e-3, hidden=512)  # the fixed digits budget
N_TOY, CHUNKS = 1000, 5  # energy distance on chunks of 1000 samples, 5 chunks per row (-> value ± se)
N_DIGITS, DIGIT_CHUNKS = 447, 3  # Fréchet distance on 447 samples, like the floor's 447 test images


def fit(net, data, n_steps, batch_size, lr, betas, generator):
    """Adam on L_simple (cosine-decayed learning rate); the network sees t / T."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
    optimizer.register_step_post_hook(lambda *_: schedule.step())
    loss = lambda model, x0: diffusion.l_simple(lambda xt, t: model(xt, t / T), x0, betas, generator=generator)  # noqa: E731
    dgm.train.train(net, loss, data, n_steps, batch_size, optimizer=optimizer, generator=generator, progress=False)


def run(device: torch.device) -> list[dict]:
    rows, betas = [], diffusion.linear_betas(T)
    for make in (two_moons, eight_gaussians):
        p, g = make().to(device), dgm.seed_everything(0)
        floor = energy_distance_floor(lambda m: p.sample(m, g), N_TOY, repeats=10)
        start = time.perf_counter()
        net = TimeMLP(2, hidden=TOY["hidden"]).to(device)
        fit(net, lambda m: p.sample(m, g), TOY["n_steps"], TOY["batch_size"], TOY["lr"], betas, g)
        samplers = {f"DDPM eps-network (TimeMLP {TOY['hidden']}x3), ancestral T={T}": lambda xt, t: net(xt, t / T),
                    f"DDPM exact eps (mixture oracle), ancestral T={T}": diffusion.exact_eps_model(p, betas)}
        for name, eps_model in samplers.items():
            with torch.no_grad():
                x = diffusion.ancestral_sample(eps_model, (N_TOY * CHUNKS, 2), betas, generator=g, device=device)
            ed = dgm.Estimate(torch.tensor([energy_distance(chunk, p.sample(N_TOY, g)) for chunk in x.split(N_TOY)]))
            budget = (f"{TOY['n_steps']} Adam steps of {TOY['batch_size']} fresh points, lr={TOY['lr']} (cosine)"
                      if "network" in name else "no training: exact eps")
            rows.append(dict(chapter=7, model=name, dataset=make.__name__, metric=f"energy distance (n={N_TOY})",
                             value=ed.value, se=ed.se, limit=floor.value, floor_se=floor.se, unit="energy distance", wall_s=time.perf_counter() - start,
                             device=str(device), budget=f"{budget}; {CHUNKS} x {N_TOY} samples vs fresh data; "
                                                        f"floor {floor.value:.4f} ± {floor.se:.4f}"))
            start = time.perf_counter()

    g = dgm.seed_everything(0)
    x_train = load_digits("train")[0].float().to(device) / 8 - 1  # (1000, 64) in [-1, 1]
    start = time.perf_counter()
    net = TimeMLP(64, hidden=DIGITS["hidden"]).to(device)
    fit(net, x_train, DIGITS["n_steps"], DIGITS["batch_size"], DIGITS["lr"], betas, g)
    train_s, floor = time.perf_counter() - start, frechet_floor()
    eps_net = lambda xt, t: net(xt, t / T)  # noqa: E731
    samplers = {f"DDPM eps-network (TimeMLP {DIGITS['hidden']}x3), ancestral T={T}":
                lambda: diffusion.ancestral_sample(eps_net, (N_DIGITS * DIGIT_CHUNKS, 64), betas, generator=g, device=device),
                f"DDPM eps-network (TimeMLP {DIGITS['hidden']}x3), DDIM 50 steps":
                lambda: diffusion.ddim_sample(eps_net, (N_DIGITS * DIGIT_CHUNKS, 64), betas, 50, generator=g, device=device)}
    for name, sample in samplers.items():
        start = time.perf_counter()
        with torch.no_grad():
            x = ((sample().clamp(-1, 1) + 1) * 8).cpu()  # back to the 0..16 scale
        fd = dgm.Estimate(torch.tensor([frechet_distance(chunk) for chunk in x.split(N_DIGITS)]))
        rows.append(dict(chapter=7, model=name, dataset="digits", metric=f"Fréchet distance ({N_DIGITS} samples)",
                         value=fd.value, se=fd.se, limit=floor, floor_se=0.0, unit="classifier features", wall_s=train_s + time.perf_counter() - start,
                         device=str(device),
                         budget=f"{DIGITS['n_steps']} Adam steps of {DIGITS['batch_size']}, lr={DIGITS['lr']} (cosine); "
                                f"{DIGIT_CHUNKS} x {N_DIGITS} samples; floor = 447 test images"))
    return rows
