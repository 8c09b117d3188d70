"""Chapter 4: the digits VAE (categorical decoder over the 17 pixel values), test NLL bounds in nats/image and bits/dim.

The recipe of notebooks/04b_vae.ipynb: `dgm.vae.digits_vae` (latent 16, MLPs 256 x 2 with dropout 0.3) trained by
`fit_digits_vae` with its defaults (AdamW, lr 3e-3, weight decay 0.01, cosine schedule, 1000 steps of batch 50 on
the 1000 training images); the notebook also records a validation curve, which does not change the recipe. The
decoder is a distribution on the integer images, so -ELBO and -IWAE_K are upper bounds on the *discrete* test NLL
(comparable with chapter 3's exact NLL and chapter 2's dequantised bound). The IWAE row uses K = 1000 importance
samples per test image; the ELBO row averages 100 one-draw estimates per image. A sample-quality row: the Fréchet
distance of 447 samples (x ~ p(x | z), z ~ N(0, I); mean over 5 sample sets) against its floor (the 447 test digits).
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm.digits import frechet_distance, frechet_floor, load_digits
from dgm.vae import digits_vae, fit_digits_vae

K_IWAE, K_ELBO = 1000, 100
N_SAMPLE_SETS = 5
MODEL = "VAE (latent 16, MLP 256x2, categorical decoder)"
BUDGET = "N=1000, 1000 AdamW steps of 50, lr=0.003 (cosine), wd=0.01, dropout=0.3"


def run(device: torch.device) -> list[Row]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    x_train, x_test = x_train.to(device), x_test.to(device)

    with timer() as elapsed:
        g = dgm.seed_everything(0)
        model = digits_vae().to(device)
        fit_digits_vae(model, x_train, generator=g, progress=False)
        model.eval()
    train_s = elapsed()

    rows = []
    fields = dict(chapter=4, model=MODEL, device=str(device))
    with torch.no_grad():
        with timer() as elapsed:
            iwae = model.iwae_bound(x_test, K_IWAE, g).cpu()  # (N,)
        rows.append(Row.nll(-iwae, wall_s=train_s + elapsed(), budget=f"{BUDGET}; upper bound -IWAE_K, K={K_IWAE}",
                            **fields))
        with timer() as elapsed:
            elbo = model.log_weights(x_test, K_ELBO, g).mean(0).cpu()  # (N,)
        rows.append(Row.nll(-elbo, metric="test -ELBO", wall_s=train_s + elapsed(),
                            budget=f"{BUDGET}; {K_ELBO} draws per image", **fields))
        with timer() as elapsed:
            fd = dgm.Estimate(torch.tensor([frechet_distance(model.sample(447, g).cpu())
                                            for _ in range(N_SAMPLE_SETS)]))
    rows.append(Row.estimate(fd, dataset="digits", metric="Fréchet distance (447 samples)", limit=frechet_floor(),
                             floor_se=0.0, unit="classifier features", wall_s=train_s + elapsed(),
                             budget=f"{BUDGET}; mean ± SE over {N_SAMPLE_SETS} sample sets; floor: the 447 test "
                                    "digits (one fixed set, no SE)", **fields))
    return rows
