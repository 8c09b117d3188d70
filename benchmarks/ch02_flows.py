"""Chapter 2: NICE, RealNVP and planar flows by maximum likelihood; KL to the exact toy densities,
and RealNVP's test NLL on the 8x8 digits (nats/image and bits/dim).

The recipes of notebooks/02b_coupling_flows.ipynb with their defaults: `dgm.flows.fit_flow` (800 Adam
steps of 256 fresh samples, cosine-decayed lr 5e-3; 1e-2 for the planar stack) and
`dgm.flows.digits_realnvp` + `fit_digits_flow` (a logit layer and 8 affine couplings with one hidden
layer of 128; 500 Adam steps of 128 dequantised images), scored by `dequantised_nll` (4 draws of u).
"""
import math

import torch

import dgm
from benchmarks.common import Row, timer
from dgm.data import eight_gaussians, two_moons
from dgm.digits import load_digits
from dgm.flows import dequantised_nll, digits_realnvp, fit_digits_flow, fit_flow, nice, planar_flow, realnvp
from dgm.metrics import kl_divergence

N_TEST = 20_000
MODELS = {"NICE, 8 additive couplings (hidden 64)": (nice, 5e-3),  # builders with the notebook's defaults
          "RealNVP, 16 affine couplings (hidden 64)": (realnvp, 5e-3),
          "planar flow, 16 layers": (planar_flow, 1e-2)}


def run(device: torch.device) -> list[Row]:
    rows = []
    for make_p in (eight_gaussians, two_moons):
        p = make_p().to(device)
        for name, (make_flow, lr) in MODELS.items():
            with timer() as elapsed:
                g = dgm.seed_everything(0)
                x_test = p.sample(N_TEST, g)
                flow = make_flow(2).to(device)
                fit_flow(flow, lambda n, p=p, g=g: p.sample(n, g), lr=lr, generator=g, progress=False)
                kl = kl_divergence(p, flow.log_prob, x_test)
            rows.append(Row.estimate(kl, chapter=2, model=name, dataset=make_p.__name__, metric="KL(p ‖ q)",
                                     limit=0.0, unit="nats", wall_s=elapsed(), device=str(device),
                                     budget=f"800 Adam steps of 256 fresh samples, lr={lr} cosine-decayed"))

    with timer() as elapsed:
        g = dgm.seed_everything(0)
        x_train, _ = load_digits("train")
        x_test, _ = load_digits("test")
        flow = digits_realnvp().to(device)
        fit_digits_flow(flow, x_train, generator=g, progress=False)
        nats = dequantised_nll(flow, x_test, generator=g)  # (N_test,), averaged over 4 draws of u
    rows.append(Row.nll(nats, chapter=2, model="RealNVP, logit + 8 affine couplings (hidden 128)", limit=None,
                        wall_s=elapsed(), device=str(device),
                        budget=f"N=1000, 500 Adam steps of 128, lr=0.001, uniform dequantisation "
                               f"(upper bound; uniform model: {64 * math.log(17):.1f})"))
    return rows
