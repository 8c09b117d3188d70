"""One short training loop that every chapter reuses."""
import os

import torch
from tqdm.auto import tqdm

from .utils import check_positive_int


def progress_bar(n_steps: int, progress: bool = True):
    """range(n_steps) with a tqdm.auto bar in live runs; TQDM_DISABLE=1 (set by the book build) hides it.

    Read here because tqdm's notebook bar passes `disable` itself and so ignores tqdm's own variable.
    """
    hidden = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
    return tqdm(range(n_steps), leave=False, disable=hidden or not progress)


def train(model: torch.nn.Module, loss_fn, data, n_steps: int, batch_size: int | None = 256, *,
          lr: float = 1e-3, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
          cosine: bool = False, optimizer: torch.optim.Optimizer | None = None,
          evaluate=None, every: int | None = None,
          generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Minimise the mean of `loss_fn(model, batch)` (per-example, shape (B,)); returns the loss of every step.

    `data` is either a tensor of examples (N, ...), from which each step draws a random minibatch
    (batch_size=None: the full batch), or a function `data(batch_size)` returning a fresh batch
    (toy data have exact samplers).

    The optimiser is Adam with decoupled weight decay (AdamW; plain Adam when weight_decay=0) at
    `lr` and `betas`, unless an `optimizer` is passed (e.g. one with parameter groups, or one kept
    across calls). `cosine=True` decays the learning rate of every group to 0 over the n_steps
    steps (cosine annealing, one scheduler step per optimizer step).

    `evaluate(model, step)` is called after every `every` steps and after the last one, with the
    model in eval mode under torch.no_grad() (its train/eval mode is restored afterwards); it records
    what it needs itself, e.g. a validation curve. A NaN or infinite loss raises FloatingPointError.
    """
    check_positive_int(n_steps, "n_steps")
    if not (callable(data) or isinstance(data, torch.Tensor)):
        raise ValueError(f"data must be a tensor (N, ...) or a function of the batch size, got {type(data).__name__}")
    if batch_size is None and callable(data):
        raise ValueError("batch_size=None (full batch) needs data as a tensor, not a sampler")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if optimizer is not None and (lr != 1e-3 or weight_decay != 0.0 or betas != (0.9, 0.999)):
        raise ValueError("lr, weight_decay and betas configure the default optimizer: set them on the "
                         "`optimizer` you pass instead")
    if (evaluate is None) != (every is None):
        raise ValueError(f"evaluate and every go together, got evaluate={evaluate!r}, every={every!r}")
    if every is not None:
        check_positive_int(every, "every")
    device = next(model.parameters()).device
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps) if cosine else None
    history = []
    bar = progress_bar(n_steps, progress)
    for step in bar:
        # 1. a batch: fresh samples, the full data set, or a random minibatch
        if callable(data):
            batch = data(batch_size)
        elif batch_size is None:
            batch = data
        else:
            batch = data[torch.randint(len(data), (batch_size,), generator=generator)]
        # 2. the loss: per-example values, reduced here
        loss = loss_fn(model, batch.to(device)).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate "
                                     "or check the model for log(0) / division by zero")
        # 3. one gradient step (and one step of the learning-rate schedule)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.append(loss.item())
        if step % 50 == 0 or step == n_steps - 1:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        # 4. evaluate after every `every` steps and at the end, with dropout off and no graph
        if evaluate is not None and ((step + 1) % every == 0 or step == n_steps - 1):
            was_training = model.training
            model.eval()
            with torch.no_grad():
                evaluate(model, step + 1)
            model.train(was_training)
    return history
