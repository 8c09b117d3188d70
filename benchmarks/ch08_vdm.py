"""Chapter 8: a continuous-time VDM on the 8x8 digits: the test NLL bound and sample quality.

Same budget as notebooks/08_vdm.ipynb: VDM(hidden=256, n_hidden=3) with a learned schedule and the
independent-pixel Bayes denoiser as its starting point, 1000 Adam steps of 128 images (lr 3e-3,
3e-2 for the schedule, cosine decay; 1000 steps is the best on the validation split). The bound is
on the discrete NLL of the integer images (a decoder over the 17 values, no dequantisation): one
row for the total and one per term. Sample quality: Fréchet
distance of 447 ancestral samples (200 steps) against the classifier-feature floor (test images).
"""
import time

import torch

import dgm
from dgm.digits import frechet_distance, frechet_floor, load_digits
from dgm.metrics import bits_per_dim
from dgm.digits import pixel_log_marginals
from dgm.vdm import VDM

N_STEPS, BATCH, LR, SCHEDULE_LR, HIDDEN, N_HIDDEN = 1000, 128, 3e-3, 3e-2, 256, 3  # the notebook's budget
REPEATS, SAMPLE_STEPS = 16, 200  # (t, eps) draws per test image; ancestral steps
BUDGET = (f"N=1000, {N_STEPS} Adam steps of {BATCH}, lr={LR} (schedule {SCHEDULE_LR}, cosine), "
          f"TimeMLP {HIDDEN}x{N_HIDDEN}")


def row(metric: str, values: torch.Tensor, wall_s: float, device) -> dict:
    """A digits NLL row (nats/image, with bits/dim), shaped like chapter 1's rows."""
    est = dgm.Estimate(values)
    return dict(chapter=8, model="VDM, learned schedule", dataset="digits (test)", metric=metric,
                value=est.value, se=est.se, limit=None, unit="nats/image", wall_s=wall_s, device=str(device),
                budget=f"{BUDGET}; {REPEATS} stratified (t, eps) draws per test image",
                bits_per_dim=bits_per_dim(est.value, 64))


def bootstrap_se(x: torch.Tensor, g: torch.Generator, n_boot: int = 20) -> float:
    """Standard deviation of frechet_distance over bootstrap resamples of the images x (N, 64)."""
    values = [frechet_distance(x[torch.randint(len(x), (len(x),), generator=g)]) for _ in range(n_boot)]
    return torch.tensor(values).std().item()


def run(device: torch.device) -> list[dict]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    start = time.perf_counter()
    g = dgm.seed_everything(0)
    model = VDM(hidden=HIDDEN, n_hidden=N_HIDDEN, log_probs=pixel_log_marginals(x_train)).to(device)
    optimizer = torch.optim.Adam([{"params": model.net.parameters()},
                                  {"params": model.schedule.parameters(), "lr": SCHEDULE_LR}], lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, N_STEPS)
    dgm.train.train(model, lambda m, x: m.loss(x, g), x_train, N_STEPS, BATCH, optimizer=optimizer,
                    scheduler=scheduler, generator=g, progress=False)
    model.eval()
    terms = {k: v.cpu() for k, v in model.nll_bound(x_test.to(device), REPEATS, g).items()}  # (N_test,) each
    wall = time.perf_counter() - start
    rows = [row("test NLL", sum(terms.values()), wall, device)]
    rows += [row(f"test NLL bound: {name} term", value, wall, device) for name, value in terms.items()]

    start = time.perf_counter()
    with torch.no_grad():
        samples = model.sample(447, n_steps=SAMPLE_STEPS, generator=g).cpu()
    fd, floor = frechet_distance(samples), frechet_floor()
    fd_se, floor_se = bootstrap_se(samples, g), bootstrap_se(x_test, g)
    rows.append(dict(chapter=8, model="VDM, learned schedule", dataset="digits",
                     metric="Fréchet distance (447 samples)", value=fd, se=fd_se, limit=floor,
                     unit="classifier features", wall_s=time.perf_counter() - start, device=str(device), floor_se=floor_se,
                     budget=f"{BUDGET}; {SAMPLE_STEPS} ancestral steps; floor: 447 test images vs train "
                            f"(floor se {floor_se:.2f}); se by bootstrap over the 447 images"))
    return rows
