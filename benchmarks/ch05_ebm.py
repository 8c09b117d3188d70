"""Chapter 5: energy-based models. RBMs on binarised digits with their EXACT test log-likelihood (log Z by
summing the 2^16 hidden states); a neural energy on eight Gaussians by KL to the truth (normalised on
the box [-3.5, 3.5]^2, as in the notebook); a GAN and a WGAN-GP (and the energy's Langevin samples) by
energy distance against its floor.

The recipes of notebooks 05a and 05b: `dgm.rbm.digits_rbm` + `fit_rbm` (3000 Adam steps of 100, lr 1e-2,
cosine) for CD-1 and PCD; `toy_ebm` + `fit_ebm`; `dgm.gan.toy_gan` + `fit_gan` / `fit_wgan_gp`, all with
their defaults. One row the notebooks do not have: the RBM trained on the exact log-likelihood gradient
(`exact_nll`, gradients through log Z, full batch, 600 steps), the reference CD and PCD are compared with.
Digits rows are exact discrete NLLs of the BINARY images (pixel >= 8), not comparable with the 17-level
rows of chapters 2-4.
"""
import functools

import torch

import dgm
from benchmarks.common import Row, timer
from dgm.data import eight_gaussians
from dgm.digits import independent_pixel_nll, load_digits, pixel_log_marginals
from dgm.ebm import box_log_prob, fit_ebm, toy_ebm
from dgm.gan import fit_gan, fit_wgan_gp, toy_gan
from dgm.langevin import langevin
from dgm.metrics import energy_distance, energy_distance_floor, kl_divergence
from dgm.rbm import PCD, cd_loss, digits_rbm, exact_nll, fit_rbm

N_HIDDEN = 16
EXACT_STEPS = 600  # the reference: full-batch Adam on the exact log-likelihood, gradients through log Z
N_SAMPLES, REPEATS = 2000, 5
RBM_BUDGET = "3000 Adam steps (batch 100), lr 0.01 cosine; exact log Z over 2^16 hidden states"
EXACT_BUDGET = f"{EXACT_STEPS} Adam steps (full batch), lr 0.01 cosine; exact log Z over 2^16 hidden states"


def rbm_rows(device) -> list[Row]:
    x_train = (load_digits("train")[0] >= 8).long()  # (1000, 64) in {0, 1}
    x_test = (load_digits("test")[0] >= 8).long()
    fields = dict(chapter=5, dataset="binarised digits (test)", device=str(device))
    with timer() as elapsed:
        log_marginals = pixel_log_marginals(x_train, levels=2)  # (64, 2), add-one smoothing
        nats = independent_pixel_nll(x_test, log_marginals)
    rows = [Row.nll(nats, model="independent Bernoulli pixels", wall_s=elapsed(),
                    budget="closed form, add-one smoothing", **fields)]
    p_on = log_marginals[:, 1].exp().to(device)  # (64,) P(pixel on)
    x_train, x_test = x_train.float().to(device), x_test.float().to(device)
    g = dgm.seed_everything(0)
    runs = {"CD-1": (functools.partial(cd_loss, k=1, generator=g), {}),
            "PCD (100 chains, k=1)": (PCD(torch.bernoulli(p_on.cpu().expand(100, 64), generator=g), k=1,
                                          generator=g), {}),
            "exact log-likelihood gradient": (exact_nll, dict(n_steps=EXACT_STEPS, batch_size=None))}
    for name, (loss_fn, budget) in runs.items():
        with timer() as elapsed:
            rbm = digits_rbm(p_on, n_hidden=N_HIDDEN)
            fit_rbm(rbm, x_train, loss_fn, generator=g, progress=False, **budget)
        wall = elapsed()
        with torch.no_grad():
            nats = -rbm.log_prob(x_test).cpu()  # exact: F(x) + log Z
        rows.append(Row.nll(nats, model=f"RBM ({N_HIDDEN} hidden), {name}", wall_s=wall,
                            budget=EXACT_BUDGET if budget else RBM_BUDGET, **fields))
    return rows


def two_sample_row(model: str, sample, data, floor, wall_s: float, device, budget: str) -> Row:
    """Energy distance of n model samples to n fresh data points (REPEATS draws), against the floor."""
    est = dgm.Estimate(torch.tensor([energy_distance(sample(N_SAMPLES), data(N_SAMPLES)) for _ in range(REPEATS)]))
    return Row.estimate(est, chapter=5, model=model, dataset="eight_gaussians",
                        metric=f"energy distance (n={N_SAMPLES})", limit=floor.value, floor_se=floor.se,
                        unit="energy distance", wall_s=wall_s, device=str(device),
                        budget=f"{budget}; limit = floor ± {floor.se:.4f} (data vs data)")


def toy_rows(device) -> list[Row]:
    p = eight_gaussians().to(device)
    g = dgm.seed_everything(0)
    data = lambda n: p.sample(n, g)  # noqa: E731
    floor = energy_distance_floor(data, N_SAMPLES, repeats=10)
    rows = []
    # 1. the neural energy: Langevin negatives from a replay buffer, KL after normalising on the box
    with timer() as elapsed:
        energy, buffer = toy_ebm(generator=g)
        energy = energy.to(device)
        fit_ebm(energy, buffer, data, progress=False)
    wall = elapsed()
    log_q = box_log_prob(energy, lim=3.5, n=200, device=device)
    with torch.no_grad():
        kl = kl_divergence(p, log_q, p.sample(20_000, g))
    budget = "800 Adam steps of 256, 20 Langevin steps (eps 0.01) from a 2000-point replay buffer"
    rows.append(Row.estimate(kl, chapter=5, model="neural EBM (MLP 64x2, leaky ReLU), Langevin negatives",
                             dataset="eight_gaussians", metric="KL(p ‖ q), q normalised on a 200x200 grid",
                             limit=0.0, unit="nats", wall_s=wall, device=str(device), budget=budget))
    noise = lambda n: (3.5 * (2 * torch.rand(n, 2, generator=g) - 1)).to(device)  # noqa: E731
    rows.append(two_sample_row("neural EBM, 500 Langevin steps from noise",
                               lambda n: langevin(energy.score, noise(n), step_size=0.01, n_steps=500, generator=g),
                               data, floor, wall, device, budget))
    # 2. GAN and WGAN-GP: the same networks, 1500 discriminator / critic updates each
    runs = {"GAN (non-saturating)": (fit_gan, "1500 generator steps x 1 critic steps, Adam lr 1e-3"),
            "WGAN-GP (lambda = 1)": (fit_wgan_gp, "300 generator steps x 5 critic steps, Adam lr 1e-3")}
    for name, (fit, budget) in runs.items():
        with timer() as elapsed:
            G, D = (net.to(device) for net in toy_gan())
            fit(G, D, data, generator=g, progress=False)

            def sample(n, G=G):
                with torch.no_grad():
                    return G(torch.randn(n, 2, generator=g).to(device))

            rows.append(two_sample_row(f"{name}, MLP 64x2", sample, data, floor, elapsed(), device, budget))
    return rows


def run(device: torch.device) -> list[Row]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the notebooks' timing: these nets are fastest on one CPU thread
    try:
        return rbm_rows(device) + toy_rows(device)
    finally:
        torch.set_num_threads(threads)
