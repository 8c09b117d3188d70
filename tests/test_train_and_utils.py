"""dgm.train and dgm.utils: the loop learns, stops on NaN, and the helpers check their input."""
import math
import random

import numpy as np
import pytest
import torch
from conftest import gen

import dgm
from dgm.utils import append_dims, check_batch, get_device, seed_everything


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
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
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


def _quadratic(m, x):
    return (m(x).squeeze(1) ** 2)  # per example (B,)


def test_train_cosine_follows_the_closed_form_schedule():
    """cosine=True: the learning rate used at step k is lr (1 + cos(pi k / n)) / 2 (cosine annealing to 0),
    for the default optimizer and for a passed one (one scheduler step per optimizer step)."""
    n, lr = 20, 0.1
    expected = [lr * (1 + math.cos(math.pi * k / n)) / 2 for k in range(n)]
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    used = []

    def loss(m, x):
        used.append(optimizer.param_groups[0]["lr"])
        return _quadratic(m, x)

    dgm.train.train(model, loss, torch.randn(8, 2, generator=gen(2)), n, batch_size=4, optimizer=optimizer,
                    cosine=True, progress=False)
    assert used == pytest.approx(expected, abs=1e-12) and optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    used.clear()
    dgm.train.train(model, loss, torch.randn(8, 2, generator=gen(2)), n, batch_size=4, optimizer=optimizer,
                    progress=False)  # cosine=False: the rate stays where it was
    assert used == [optimizer.param_groups[0]["lr"]] * n


def test_train_default_optimizer_is_adam_with_decoupled_weight_decay():
    """weight_decay=0: the same trajectory as torch.optim.Adam run by hand (with the given betas); weight_decay > 0
    with a zero loss gradient shrinks every weight by exactly (1 - lr wd) per step (AdamW's decoupled decay)."""
    x = torch.randn(64, 3, generator=gen(3))
    for betas in ((0.9, 0.999), (0.0, 0.999)):
        torch.manual_seed(0)
        model, reference = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
        reference.load_state_dict(model.state_dict())
        idx_gen = gen(4)
        batches = [x[torch.randint(len(x), (16,), generator=idx_gen)] for _ in range(30)]
        adam = torch.optim.Adam(reference.parameters(), lr=0.05, betas=betas)
        for batch in batches:  # the oracle: a hand-written Adam loop over the same minibatches
            adam.zero_grad()
            _quadratic(reference, batch).mean().backward()
            adam.step()
        dgm.train.train(model, _quadratic, x, 30, batch_size=16, lr=0.05, betas=betas, generator=gen(4),
                        progress=False)
        torch.testing.assert_close(model.weight, reference.weight, rtol=0, atol=1e-6)
    model = torch.nn.Linear(3, 1)
    w0 = model.weight.detach().clone()
    dgm.train.train(model, lambda m, b: 0.0 * m(b).squeeze(1), x, 10, batch_size=8, lr=0.1, weight_decay=0.5,
                    progress=False)
    torch.testing.assert_close(model.weight.detach(), w0 * (1 - 0.1 * 0.5) ** 10)


def test_train_evaluates_every_k_steps_without_gradients_in_eval_mode():
    """evaluate(model, step) runs after steps every, 2 every, ... and after the last one, in eval mode under
    no_grad; the model's training mode is restored, and bad combinations raise ValueError."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))
    calls = []
    record = lambda m, step: calls.append((step, m.training, torch.is_grad_enabled()))  # noqa: E731
    dgm.train.train(model, _quadratic, torch.randn(8, 2, generator=gen(5)), 25, batch_size=4, evaluate=record,
                    every=10, progress=False)
    assert calls == [(10, False, False), (20, False, False), (25, False, False)] and model.training
    with pytest.raises(ValueError, match="evaluate and every go together"):
        dgm.train.train(model, _quadratic, torch.zeros(4, 2), 1, evaluate=record)
    with pytest.raises(ValueError, match="every must be a positive int"):
        dgm.train.train(model, _quadratic, torch.zeros(4, 2), 1, evaluate=record, every=0)
    with pytest.raises(ValueError, match="set them on the `optimizer`"):
        dgm.train.train(model, _quadratic, torch.zeros(4, 2), 1, lr=0.5,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        dgm.train.train(model, _quadratic, torch.zeros(4, 2), 1, weight_decay=-1.0)


def test_per_example_check_same_shape_and_check_levels():
    """The shared input checks: a float or (B,) value broadcast against x of any shape; mismatches name both shapes."""
    from dgm.utils import check_levels, check_same_shape, per_example

    x = torch.zeros(3, 1, 8, 8, dtype=torch.float64)
    assert per_example(0.5, x, "sigma").shape == (3,) and per_example(0.5, x, "sigma").dtype == torch.float64
    v = per_example(torch.tensor([1.0, 2.0, 3.0]), x, "sigma", broadcast=True)
    assert v.shape == (3, 1, 1, 1) and torch.equal((v * torch.ones_like(x))[:, 0, 0, 0], torch.tensor([1.0, 2.0, 3.0],
                                                                                                       dtype=x.dtype))
    with pytest.raises(ValueError, match=r"sigma must be a float or have shape \(B,\)=\(3,\) for a batch of shape "
                                         r"\(3, 1, 8, 8\), got sigma of shape \(2,\)"):
        per_example(torch.ones(2), x, "sigma")
    with pytest.raises(ValueError, match=r"got sigma of shape \(3, 1\)"):
        per_example(torch.ones(3, 1), x, "sigma")
    check_same_shape(torch.zeros(2, 3), torch.ones(2, 3), "a", "b")
    with pytest.raises(ValueError, match=r"eps and x0 must have the same shape, got eps \(4, 1\) and x0 \(4, 2\)"):
        check_same_shape(torch.zeros(4, 1), torch.zeros(4, 2), "eps", "x0")
    with pytest.raises(ValueError, match=r"score\(x\) must be a torch.Tensor, got list"):  # a function's output
        check_same_shape([0.0, 1.0], torch.zeros(2), "score(x)", "x")
    check_levels(torch.tensor([0, 16]), 17)
    for bad, match in ((torch.tensor([0.0, 1.0]), "dtype torch.float32"), (torch.tensor([0, 17]), r"\[0, 17\]"),
                       (torch.tensor([-1, 3]), r"\[-1, 3\]"), (torch.zeros(0, dtype=torch.long), "empty"),
                       (torch.tensor([True]), "dtype torch.bool"), ([1, 2], "got list")):
        with pytest.raises(ValueError, match=match):
            check_levels(bad, 17)


def test_randn_like_and_check_positive_int():
    """randn_like: x's shape and dtype, the same draws for one seed; check_positive_int rejects 0, floats, bools."""
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


def test_progress_bar_hides_when_asked(monkeypatch):
    """The book build sets TQDM_DISABLE=1; dgm reads it itself (tqdm's notebook bar would ignore it)."""
    from dgm.train import progress_bar

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(3).disable and progress_bar(3, progress=False).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(3).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress_bar(3).disable
