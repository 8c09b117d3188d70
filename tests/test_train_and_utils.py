"""dgm.train and dgm.utils: the loop learns, stops on NaN, and the helpers check their input."""
import random

import numpy as np
import pytest
import torch

import dgm
from dgm.utils import append_dims, check_batch, get_device, seed_everything
from conftest import gen


def test_train_fits_a_mean_from_tensor_and_from_sampler():
    """Minimising E||x - m||^2 drives m to the data mean, for tensor data and for a sampler."""
    data = torch.randn(1000, 2, generator=gen(0)) + torch.tensor([3.0, -1.0])
    for source in (data, lambda b: data[torch.randint(len(data), (b,), generator=gen(1))]):
        model = torch.nn.Linear(1, 2, bias=False)
        loss = lambda m, x: ((x - m.weight.T) ** 2).sum(1)  # noqa: E731  per example (B,)
        history = dgm.train.train(model, loss, source, n_steps=300, batch_size=200, lr=0.1, progress=False)
        assert len(history) == 300 and history[-1] < history[0]
        torch.testing.assert_close(model.weight.detach().T[0], data.mean(0), atol=0.2, rtol=0)


def test_train_stops_on_nan_with_a_clear_error():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        dgm.train.train(model, lambda m, x: m(x).squeeze(1) * float("nan"), torch.zeros(10, 2), 5, progress=False)


def test_train_bad_arguments():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        dgm.train.train(model, lambda m, x: m(x), torch.zeros(4, 2), 0)
    with pytest.raises(ValueError, match="data must be a tensor"):
        dgm.train.train(model, lambda m, x: m(x), [1, 2, 3], 1)
    with pytest.raises(ValueError, match="batch_size=None"):
        dgm.train.train(model, lambda m, x: m(x), lambda b: torch.zeros(b, 2), 1, batch_size=None)


def test_seed_everything_seeds_all_generators():
    seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_get_device_returns_an_available_device():
    device = get_device()
    assert device.type in {"cuda", "mps", "cpu"}
    assert torch.zeros(1, device=device).device.type == device.type


def test_append_dims_broadcasts_per_example_scalars():
    t = torch.arange(3.0)
    assert append_dims(t, 4).shape == (3, 1, 1, 1) and append_dims(t, 2).shape == (3, 1)
    x = torch.ones(3, 1, 8, 8)
    assert torch.equal((append_dims(t, x.ndim) * x)[:, 0, 0, 0], t)
    with pytest.raises(ValueError, match="cannot broadcast"):
        append_dims(torch.zeros(2, 2), 1)


def test_check_batch_messages():
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\), got \(3,\)"):
        check_batch(torch.zeros(3), 2)
    with pytest.raises(ValueError, match="floating-point"):
        check_batch(torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        check_batch([[0.0, 0.0]], 2)


def test_train_steps_the_scheduler_after_every_optimizer_step():
    """A cosine schedule over n_steps ends at eta_min: the loop stepped it exactly n_steps times."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20, eta_min=0.01)
    dgm.train.train(model, lambda m, x: m(x).squeeze(1) ** 2, torch.randn(8, 2, generator=gen(2)), 20,
                    batch_size=4, optimizer=optimizer, scheduler=scheduler, progress=False)
    assert scheduler.last_epoch == 20 and optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler must be built on the optimizer"):
        dgm.train.train(model, lambda m, x: m(x), torch.zeros(4, 2), 1, optimizer=other,
                        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, 5))


def test_randn_like_and_check_positive_int():
    """randn_like: x's shape and dtype, the same draws for the same seed; check_positive_int rejects 0, floats and bools."""
    from dgm.utils import check_positive_int, randn_like

    x = torch.zeros(3, 4, dtype=torch.float64)
    a, b = randn_like(x, torch.Generator().manual_seed(5)), randn_like(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and a.dtype == torch.float64 and torch.equal(a, b)
    check_positive_int(3, "n")
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must be a positive int"):
            check_positive_int(bad, "n")


def test_standard_normal_log_prob_matches_torch_on_any_leading_shape():
    """log N(z; 0, I) over the last axis equals torch.distributions for (B, D) and (k, B, D) inputs."""
    from dgm.utils import standard_normal_log_prob

    for shape in ((5, 3), (4, 5, 3)):
        z = torch.randn(shape, generator=gen(0), dtype=torch.float64)
        expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        assert torch.allclose(standard_normal_log_prob(z), expected)
