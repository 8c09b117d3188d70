"""Chapter 4: the digits VAE (categorical decoder over the 17 pixel values), test NLL bounds in nats/image and bits/dim.

Same budget as notebooks/04b_vae.ipynb: latent 16, MLPs 256 x 2 with dropout 0.3, AdamW (lr 3e-3, weight decay
0.01, cosine schedule), 1000 steps of batch 50 on the 1000 training images. The decoder is a distribution on the
integer images, so -ELBO and -IWAE_K are upper bounds on the *discrete* test NLL (comparable with chapter 3's
exact NLL and chapter 2's dequantised bound). The IWAE row uses K = 1000 importance samples per test image; the
ELBO row averages 100 one-draw estimates per image. A sample-quality row: the Fréchet distance of 447 samples
(x ~ p(x | z), z ~ N(0, I); mean over 5 sample sets) against its floor (the 447 test digits).
"""
import time

import torch

import dgm
from dgm.digits import frechet_distance, frechet_floor, load_digits
from dgm.metrics import bits_per_dim
from dgm.vae import digits_vae, negative_elbo

LATENT, HIDDEN, DROPOUT = 16, 256, 0.3
N_STEPS, BATCH, LR, WEIGHT_DECAY = 1000, 50, 3e-3, 0.01  # the fixed budget
K_IWAE, K_ELBO = 1000, 100
N_SAMPLE_SETS = 5
MODEL = f"VAE (latent {LATENT}, MLP {HIDDEN}x2, categorical decoder)"
BUDGET = (f"N=1000, {N_STEPS} AdamW steps of {BATCH}, lr={LR} (cosine), wd={WEIGHT_DECAY}, dropout={DROPOUT}")


def row(metric: str, nats: torch.Tensor, wall_s: float, device, budget: str, dim: int = 64) -> dict:
    """One test-NLL row (shaped like chapter 1's), with the value also in bits per dimension."""
    est = dgm.Estimate(nats)  # mean over test images ± its standard error
    return dict(chapter=4, model=MODEL, dataset="digits (test)", metric=metric, value=est.value, se=est.se,
                limit=None, unit="nats/image", wall_s=wall_s, device=str(device), budget=budget,
                bits_per_dim=bits_per_dim(est.value, dim))


def run(device: torch.device) -> list[dict]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    x_train, x_test = x_train.to(device), x_test.to(device)

    start = time.perf_counter()
    g = dgm.seed_everything(0)
    model = digits_vae(latent_dim=LATENT, hidden=HIDDEN, dropout=DROPOUT).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, N_STEPS)
    dgm.train.train(model, negative_elbo, x_train, n_steps=N_STEPS, batch_size=BATCH, optimizer=optimizer,
                    scheduler=scheduler, generator=g, progress=False)
    model.eval()
    train_s = time.perf_counter() - start

    rows = []
    with torch.no_grad():
        t = time.perf_counter()
        iwae = model.iwae_bound(x_test, K_IWAE, g).cpu()  # (N,)
        rows.append(row("test NLL", -iwae, train_s + time.perf_counter() - t, device,
                        f"{BUDGET}; upper bound -IWAE_K, K={K_IWAE}"))
        t = time.perf_counter()
        elbo = model.log_weights(x_test, K_ELBO, g).mean(0).cpu()  # (N,)
        rows.append(row("test -ELBO", -elbo, train_s + time.perf_counter() - t, device,
                        f"{BUDGET}; {K_ELBO} draws per image"))
        t = time.perf_counter()
        fd = dgm.Estimate(torch.tensor([frechet_distance(model.sample(447, g).cpu()) for _ in range(N_SAMPLE_SETS)]))
    rows.append(dict(chapter=4, model=MODEL, dataset="digits", metric="Fréchet distance (447 samples)",
                     value=fd.value, se=fd.se, limit=frechet_floor(), floor_se=0.0, unit="classifier features",
                     wall_s=train_s + time.perf_counter() - t, device=str(device),
                     budget=f"{BUDGET}; mean ± SE over {N_SAMPLE_SETS} sample sets; floor: the 447 test digits "
                            "(one fixed set, no SE)"))
    return rows
