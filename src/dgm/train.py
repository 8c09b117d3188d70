"""One short training loop that every chapter reuses."""
import torch
from tqdm.auto import tqdm


def train(model: torch.nn.Module, loss_fn, data, n_steps: int, batch_size: int | None = 256,
          lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None,
          scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
          generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Minimise the mean of `loss_fn(model, batch)` (per-example, shape (B,)) with Adam; returns the loss history.

    `data` is either a tensor of examples (N, ...), from which each step draws a random minibatch
    (batch_size=None: the full batch), or a function `data(batch_size)` returning a fresh batch
    (toy data have exact samplers). A `scheduler` (built on `optimizer`) steps after every
    optimizer step. A NaN or infinite loss stops training with FloatingPointError.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not (callable(data) or isinstance(data, torch.Tensor)):
        raise ValueError(f"data must be a tensor (N, ...) or a function of the batch size, got {type(data).__name__}")
    if callable(data) and batch_size is None:
        raise ValueError("batch_size=None (full batch) needs data as a tensor, not a sampler")
    if scheduler is not None and (optimizer is None or scheduler.optimizer is not optimizer):
        raise ValueError("a scheduler must be built on the optimizer passed as `optimizer`")
    device = next(model.parameters()).device
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    bar = tqdm(range(n_steps), disable=not progress, leave=False)
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
    return history
