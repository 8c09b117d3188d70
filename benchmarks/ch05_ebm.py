"""Chapter 5: energy-based models. RBMs on binarised digits with their EXACT test log-likelihood (log Z by
summing the 2^16 hidden states); a neural energy on eight Gaussians by KL to the truth (normalised on
a grid); a GAN and a WGAN-GP (and the energy's Langevin samples) by energy distance against its floor.

Same budgets as notebooks 05a and 05b. Digits rows are exact discrete NLLs of the BINARY images
(pixel >= 8), not comparable with the 17-level rows of chapters 2-4.
"""
import time

import torch
from torch import nn

import dgm
from dgm.data import eight_gaussians
from dgm.digits import load_digits
from dgm.ebm import PCD, RBM, NeuralEnergy, ReplayBuffer, cd_loss, contrastive_loss, grid_log_z
from dgm.gan import critic_loss, discriminator_loss, generator_loss, train_gan, wgan_generator_loss
from dgm.langevin import langevin
from dgm.metrics import bits_per_dim, energy_distance, energy_distance_floor, kl_divergence
from dgm.nets import MLP

N_HIDDEN, RBM_STEPS, RBM_BATCH, RBM_LR = 16, 3000, 100, 1e-2  # notebook 05a
EXACT_STEPS = 600  # reference: full-batch Adam on the exact log-likelihood, gradients through log Z
EBM_STEPS, GAN_STEPS, WGAN_STEPS, N_SAMPLES, REPEATS = 800, 1500, 300, 2000, 5  # notebook 05b


def digits_row(model: str, rbm_or_nats, x_test, wall_s: float, device, budget: str) -> dict:
    """A test-NLL row (nats/image of the binary images, exact) with bits/dim."""
    with torch.no_grad():
        nats = rbm_or_nats if isinstance(rbm_or_nats, torch.Tensor) else -rbm_or_nats.log_prob(x_test)
    est = dgm.Estimate(nats)
    return dict(chapter=5, model=model, dataset="binarised digits (test)", metric="test NLL", value=est.value,
                se=est.se, limit=None, unit="nats/image", wall_s=wall_s, device=str(device), budget=budget,
                bits_per_dim=bits_per_dim(est.value, 64))


def rbm_rows(device) -> list[dict]:
    x_train = (load_digits("train")[0] >= 8).float().to(device)
    x_test = (load_digits("test")[0] >= 8).float().to(device)
    p_on = (x_train.sum(0) + 1) / (len(x_train) + 2)  # (64,) pixel frequencies, add-one smoothing
    start = time.perf_counter()
    nats = -(x_test * p_on.log() + (1 - x_test) * (1 - p_on).log()).sum(1)
    rows = [digits_row("independent Bernoulli pixels", nats, x_test, time.perf_counter() - start, device,
                       "closed form, add-one smoothing")]
    g = dgm.seed_everything(0)
    losses = {"CD-1": lambda m, x: cd_loss(m, x, k=1, generator=g),
              "PCD (100 chains, k=1)": PCD(torch.bernoulli(p_on.cpu().expand(100, 64), generator=g), k=1, generator=g),
              "exact log-likelihood gradient": lambda m, x: -m.log_prob(x)}
    for name, loss_fn in losses.items():
        start = time.perf_counter()
        rbm = RBM(64, N_HIDDEN, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            rbm.a.copy_(torch.logit(p_on))  # start at the independent-pixel model
        exact = name.startswith("exact")
        n_steps, batch = (EXACT_STEPS, None) if exact else (RBM_STEPS, RBM_BATCH)
        optimizer = torch.optim.Adam(rbm.parameters(), lr=RBM_LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
        dgm.train.train(rbm, loss_fn, x_train, n_steps, batch, optimizer=optimizer, scheduler=schedule,
                        generator=g, progress=False)
        rows.append(digits_row(f"RBM ({N_HIDDEN} hidden), {name}", rbm, x_test, time.perf_counter() - start, device,
                               f"{n_steps} Adam steps ({'full batch' if exact else f'batch {batch}'}), lr {RBM_LR} "
                               "cosine; exact log Z over 2^16 hidden states"))
    return rows


def two_sample_row(model: str, sample, data, floor, wall_s: float, device, budget: str) -> dict:
    """Energy distance of n model samples to n fresh data points (REPEATS draws), against the floor."""
    est = dgm.Estimate(torch.tensor([energy_distance(sample(N_SAMPLES), data(N_SAMPLES)) for _ in range(REPEATS)]))
    return dict(chapter=5, model=model, dataset="eight_gaussians", metric=f"energy distance (n={N_SAMPLES})",
                value=est.value, se=est.se, limit=floor.value, floor_se=floor.se, unit="energy distance", wall_s=wall_s,
                device=str(device), budget=f"{budget}; limit = floor ± {floor.se:.4f} (data vs data)")


def toy_rows(device) -> list[dict]:
    p = eight_gaussians().to(device)
    g = dgm.seed_everything(0)
    data = lambda n: p.sample(n, g)  # noqa: E731
    floor = energy_distance_floor(data, N_SAMPLES, repeats=10)
    rows = []
    # 1. the neural energy: Langevin negatives from a replay buffer, KL after normalising on a grid
    start = time.perf_counter()
    energy = NeuralEnergy(2, hidden=64, n_hidden=2, act=nn.LeakyReLU).to(device)
    buffer = ReplayBuffer(dim=2, size=2000, lim=3.5, restart=0.05, generator=g)

    def loss(model, x):
        return contrastive_loss(model, x, buffer.negatives(model, len(x), step_size=0.01, n_steps=20), reg=0.01)

    optimizer = torch.optim.Adam(energy.parameters(), lr=2e-3, betas=(0.0, 0.999))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EBM_STEPS)
    dgm.train.train(energy, loss, data, EBM_STEPS, 256, optimizer=optimizer, scheduler=schedule, progress=False)
    wall = time.perf_counter() - start
    log_z = grid_log_z(energy, lim=3.5, n=200, device=device)
    with torch.no_grad():
        kl = kl_divergence(p, lambda x: -energy(x) - log_z, p.sample(20_000, g))
    budget = f"{EBM_STEPS} Adam steps of 256, 20 Langevin steps (eps 0.01) from a 2000-point replay buffer"
    rows.append(dict(chapter=5, model="neural EBM (MLP 64x2, leaky ReLU), Langevin negatives",
                     dataset="eight_gaussians", metric="KL(p ‖ q), q normalised on a 200x200 grid",
                     value=kl.value, se=kl.se, limit=0.0, unit="nats", wall_s=wall, device=str(device), budget=budget))
    noise = lambda n: (3.5 * (2 * torch.rand(n, 2, generator=g) - 1)).to(device)  # noqa: E731
    rows.append(two_sample_row("neural EBM, 500 Langevin steps from noise",
                               lambda n: langevin(energy.score, noise(n), step_size=0.01, n_steps=500, generator=g),
                               data, floor, wall, device, budget))
    # 2. GAN and WGAN-GP: the same networks, 1500 discriminator / critic updates each
    runs = {"GAN (non-saturating)": (discriminator_loss, generator_loss, GAN_STEPS, 1),
            "WGAN-GP (lambda = 1)": (lambda f, x, y: critic_loss(f, x, y, gp_weight=1.0, generator=g),
                                     wgan_generator_loss, WGAN_STEPS, 5)}
    for name, (d_loss, g_loss, n_steps, n_critic) in runs.items():
        start = time.perf_counter()
        G = MLP(2, 2, hidden=64, act=nn.LeakyReLU).to(device)
        D = MLP(2, 1, hidden=64, act=nn.LeakyReLU).to(device)
        train_gan(G, D, d_loss, g_loss, data, n_steps=n_steps, n_critic=n_critic, lr=1e-3, generator=g, progress=False)
        with torch.no_grad():
            sample = lambda n: G(torch.randn(n, 2, generator=g).to(device))  # noqa: E731
            rows.append(two_sample_row(f"{name}, MLP 64x2", sample, data, floor, time.perf_counter() - start, device,
                                       f"{n_steps} generator steps x {n_critic} critic steps, Adam lr 1e-3"))
    return rows


def run(device: torch.device) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the notebooks' timing: these nets are fastest on one CPU thread
    try:
        return rbm_rows(device) + toy_rows(device)
    finally:
        torch.set_num_threads(threads)
