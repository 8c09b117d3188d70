"""Chapter 3: CategoricalMADE on the 8x8 digits, exact discrete test NLL (nats/image and bits/dim).

Same budget as notebooks/03_autoregressive.ipynb: one hidden layer of 1024 units, dropout 0.5,
AdamW (lr 3e-3, weight decay 0.05), 500 steps of batch 100 on the 1000 training images. The
independent-pixel model (a per-pixel histogram, add-one smoothing) is the reference row.
"""
import time

import torch

import dgm
from dgm.autoregressive import CategoricalMADE
from dgm.digits import DIGITS_LEVELS, load_digits, pixel_log_marginals
from dgm.metrics import bits_per_dim
from dgm.mle import nll

N_STEPS, BATCH, LR, WEIGHT_DECAY, HIDDEN, DROPOUT = 500, 100, 3e-3, 0.05, (1024,), 0.5  # the fixed budget
ORDER_SEED = 1  # the random order of the notebook


def row(model: str, nats: torch.Tensor, wall_s: float, device, budget: str, dim: int = 64) -> dict:
    """One result row (shaped like chapter 1's), with the NLL also in bits per dimension."""
    est = dgm.Estimate(nats)  # mean over test images ± its standard error
    return dict(chapter=3, model=model, dataset="digits (test)", metric="test NLL", value=est.value,
                se=est.se, limit=None, unit="nats/image", wall_s=wall_s, device=str(device), budget=budget,
                bits_per_dim=bits_per_dim(est.value, dim))


def run(device: torch.device) -> list[dict]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    D = x_train.shape[1]
    rows = []

    start = time.perf_counter()  # reference: independent pixels, closed form
    log_marginals = pixel_log_marginals(x_train, dtype=torch.float64)  # (D, levels), add-one smoothing
    nats = -log_marginals.gather(1, x_test.T).sum(0)  # (N_test,)
    rows.append(row("independent pixels (histograms)", nats, time.perf_counter() - start, device,
                    "closed form, add-one smoothing"))

    orders = {"raster": None, "random": torch.randperm(D, generator=torch.Generator().manual_seed(ORDER_SEED))}
    for name, order in orders.items():
        start = time.perf_counter()
        g = dgm.seed_everything(0)
        model = CategoricalMADE(dim=D, levels=DIGITS_LEVELS, hidden=HIDDEN, order=order, dropout=DROPOUT).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        dgm.train.train(model, nll, x_train, n_steps=N_STEPS, batch_size=BATCH, optimizer=optimizer,
                        generator=g, progress=False)
        model.eval()
        with torch.no_grad():
            nats = nll(model, x_test.to(device)).cpu()
        rows.append(row(f"CategoricalMADE, {name} order", nats, time.perf_counter() - start, device,
                        f"N=1000, {N_STEPS} AdamW steps of {BATCH}, lr={LR}, wd={WEIGHT_DECAY}, "
                        f"hidden={HIDDEN}, dropout={DROPOUT}"))
    return rows
