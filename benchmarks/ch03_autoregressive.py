"""Chapter 3: CategoricalMADE on the 8x8 digits, exact discrete test NLL (nats/image and bits/dim).

The recipe of notebooks/03_autoregressive.ipynb: `dgm.autoregressive.digits_made` (one hidden layer of
1024 units, dropout 0.5) and `fit_made` with its defaults (AdamW, lr 3e-3, weight decay 0.05, 500 steps
of batch 100 on the 1000 training images), in raster order and in the notebook's random order. The
independent-pixel model (a per-pixel histogram, add-one smoothing) is the reference row.
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm.autoregressive import digits_made, fit_made
from dgm.digits import independent_pixel_nll, load_digits, pixel_log_marginals

ORDER_SEED = 1  # the random order of the notebook
BUDGET = "N=1000, 500 AdamW steps of 100, lr=0.003, wd=0.05, hidden=(1024,), dropout=0.5"


def run(device: torch.device) -> list[Row]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    rows = []

    with timer() as elapsed:  # reference: independent pixels, closed form
        log_marginals = pixel_log_marginals(x_train, dtype=torch.float64)  # (D, levels), add-one smoothing
        nats = independent_pixel_nll(x_test, log_marginals)  # (N_test,)
    rows.append(Row.nll(nats, chapter=3, model="independent pixels (histograms)", wall_s=elapsed(),
                        device=str(device), budget="closed form, add-one smoothing"))

    orders = {"raster": None, "random": torch.randperm(64, generator=torch.Generator().manual_seed(ORDER_SEED))}
    for name, order in orders.items():
        with timer() as elapsed:
            g = dgm.seed_everything(0)
            model = digits_made(order).to(device)
            fit_made(model, x_train, generator=g, progress=False)
            model.eval()
            with torch.no_grad():
                nats = -model.log_prob(x_test.to(device)).cpu()
        rows.append(Row.nll(nats, chapter=3, model=f"CategoricalMADE, {name} order", wall_s=elapsed(),
                            device=str(device), budget=BUDGET))
    return rows
