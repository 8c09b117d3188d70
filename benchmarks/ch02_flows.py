"""Chapter 2: NICE, RealNVP and planar flows by maximum likelihood; KL to the exact toy densities,
and RealNVP's test NLL on the 8x8 digits (nats/image and bits/dim).

Same budget as notebooks/02b_coupling_flows.ipynb: toy flows take 800 Adam steps of 256 fresh samples
with a cosine-decayed learning rate (5e-3; 1e-2 for the planar stack); the digits flow is a logit
layer and 8 affine couplings (one hidden layer of 128), 500 Adam steps of 128 dequantised images.
"""
import math
import time

import torch

import dgm
from dgm.data import eight_gaussians, two_moons
from dgm.digits import dequantize, load_digits, nll_nats_per_image
from dgm.flows import AffineCoupling, Logit, NormalizingFlow, alternating_masks, nice, planar_flow, realnvp
from dgm.metrics import bits_per_dim, kl_divergence
from dgm.mle import nll

N_STEPS, BATCH, N_TEST = 800, 256, 20_000  # the fixed toy budget
MODELS = {"NICE, 8 additive couplings (hidden 64)": (lambda: nice(2, n_layers=8, hidden=64), 5e-3),
          "RealNVP, 16 affine couplings (hidden 64)": (lambda: realnvp(2, n_layers=16, hidden=64), 5e-3),
          "planar flow, 16 layers": (lambda: planar_flow(2, n_layers=16), 1e-2)}
DIGITS_STEPS, DIGITS_BATCH, DIGITS_LR = 500, 128, 1e-3


def fit(flow, sample, n_steps, batch_size, lr, generator):
    """Adam with a cosine-decayed learning rate on the per-example NLL (the notebook's recipe)."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
    return dgm.train.train(flow, nll, sample, n_steps, batch_size, optimizer=optimizer, scheduler=scheduler,
                           generator=generator, progress=False)


def run(device: torch.device) -> list[dict]:
    rows = []
    for make_p in (eight_gaussians, two_moons):
        p = make_p().to(device)
        for name, (make_flow, lr) in MODELS.items():
            start = time.perf_counter()
            g = dgm.seed_everything(0)
            x_test = p.sample(N_TEST, g)
            flow = make_flow().to(device)
            fit(flow, lambda n: p.sample(n, g), N_STEPS, BATCH, lr, g)
            kl = kl_divergence(p, flow.log_prob, x_test)
            rows.append(dict(chapter=2, model=name, dataset=make_p.__name__, metric="KL(p ‖ q)", value=kl.value,
                             se=kl.se, limit=0.0, unit="nats", wall_s=time.perf_counter() - start,
                             device=str(device), budget=f"{N_STEPS} Adam steps of {BATCH} fresh samples, "
                                                        f"lr={lr} cosine-decayed"))

    start = time.perf_counter()
    g = dgm.seed_everything(0)
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    layers = [Logit(64, alpha=0.01)] + [AffineCoupling(m, hidden=128, n_hidden=1) for m in alternating_masks(64, 8)]
    flow = NormalizingFlow(layers, dim=64).to(device)
    optimizer = torch.optim.Adam(flow.parameters(), lr=DIGITS_LR)
    dgm.train.train(flow, nll, lambda n: dequantize(x_train[torch.randint(len(x_train), (n,), generator=g)], g),
                    DIGITS_STEPS, DIGITS_BATCH, optimizer=optimizer, progress=False)
    with torch.no_grad():  # the dequantisation bound, averaged over 4 noise draws per test image
        nats = torch.stack([nll_nats_per_image(flow.log_prob(dequantize(x_test, g).to(device)))
                            for _ in range(4)]).mean(0).cpu()
    est = dgm.Estimate(nats)
    rows.append(dict(chapter=2, model="RealNVP, logit + 8 affine couplings (hidden 128)", dataset="digits (test)",
                     metric="test NLL", value=est.value, se=est.se, limit=None, unit="nats/image",
                     wall_s=time.perf_counter() - start, device=str(device),
                     budget=f"N=1000, {DIGITS_STEPS} Adam steps of {DIGITS_BATCH}, lr={DIGITS_LR}, "
                            f"uniform dequantisation (upper bound; uniform model: {64 * math.log(17):.1f})",
                     bits_per_dim=bits_per_dim(est.value, 64)))
    return rows


if __name__ == "__main__":
    for r in run(dgm.get_device()):
        print(f"{r['model']:50s} {r['dataset']:16s} {r['value']:.4f} ± {r['se']:.4f} {r['unit']} "
              f"({r['wall_s']:.1f} s)" + (f", {r['bits_per_dim']:.3f} bits/dim" if "bits_per_dim" in r else ""))
