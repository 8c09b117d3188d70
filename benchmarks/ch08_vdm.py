"""Chapter 8: a continuous-time VDM on the 8x8 digits: the test NLL bound and sample quality.

Notebook 08's recipe and budget, through the same functions (`vdm.digits_vdm`, `vdm.fit_vdm`):
VDM(hidden=256, n_hidden=3) with a learned schedule and the independent-pixel Bayes denoiser as its
starting point, 1000 Adam steps of 128 images (lr 3e-3, 3e-2 for the schedule, cosine decay; 1000
steps is the best on the validation split). The bound is on the discrete NLL of the integer images (a
decoder over the 17 values, no dequantisation): one row for the total and one per term. Sample
quality: Fréchet distance of 447 ancestral samples (200 steps) against the classifier-feature floor
(test images).
"""
import torch

import dgm
from benchmarks.common import Row, timer
from dgm import vdm
from dgm.digits import frechet_distance, frechet_floor, load_digits

REPEATS, SAMPLE_STEPS = 16, 200  # (t, eps) draws per test image; ancestral steps
BUDGET = "N=1000, 1000 Adam steps of 128, lr=0.003 (schedule 0.03, cosine), TimeMLP 256x3"  # fit_vdm's defaults
MODEL = "VDM, learned schedule"


def bootstrap_se(x: torch.Tensor, g: torch.Generator, n_boot: int = 20) -> float:
    """Standard deviation of frechet_distance over bootstrap resamples of the images x (N, 64)."""
    values = [frechet_distance(x[torch.randint(len(x), (len(x),), generator=g)]) for _ in range(n_boot)]
    return torch.tensor(values).std().item()


def run(device: torch.device) -> list[Row]:
    x_train, _ = load_digits("train")
    x_test, _ = load_digits("test")
    with timer() as elapsed:
        g = dgm.seed_everything(0)
        model = vdm.digits_vdm(x_train).to(device)
        vdm.fit_vdm(model, x_train, generator=g, progress=False)
        model.eval()
        terms = {k: v.cpu() for k, v in model.nll_bound(x_test.to(device), REPEATS, g).items()}  # (N_test,) each
    fields = dict(chapter=8, model=MODEL, wall_s=elapsed(), device=str(device),
                  budget=f"{BUDGET}; {REPEATS} stratified (t, eps) draws per test image")
    rows = [Row.nll(sum(terms.values()), **fields)]
    rows += [Row.nll(value, metric=f"test NLL bound: {name} term", **fields) for name, value in terms.items()]

    with timer() as elapsed:
        samples = model.sample(447, n_steps=SAMPLE_STEPS, generator=g).cpu()
        fd, floor = frechet_distance(samples), frechet_floor()
        fd_se, floor_se = bootstrap_se(samples, g), bootstrap_se(x_test, g)
    rows.append(Row(chapter=8, model=MODEL, dataset="digits", metric="Fréchet distance (447 samples)", value=fd,
                    se=fd_se, limit=floor, floor_se=floor_se, unit="classifier features", wall_s=elapsed(),
                    device=str(device),
                    budget=f"{BUDGET}; {SAMPLE_STEPS} ancestral steps; floor: 447 test images vs train "
                           f"(floor se {floor_se:.2f}); se by bootstrap over the 447 images"))
    return rows
