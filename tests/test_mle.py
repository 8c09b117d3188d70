"""dgm.mle: the learnable mixture against torch.distributions, the closed-form Gaussian MLE, training."""
import pytest
import torch
from conftest import gen

import dgm
from dgm.data import eight_gaussians
from dgm.mle import GaussianMixtureModel, fit_gaussian, fit_mixture


def as_torch_distribution(model):
    mix = torch.distributions.Categorical(logits=model.logits)
    comp = torch.distributions.MultivariateNormal(model.means, scale_tril=model.scale_tril())
    return torch.distributions.MixtureSameFamily(mix, comp)


def test_mixture_log_prob_matches_torch_distributions():
    """Eq. (eq-ml-logsumexp): the hand-written log-sum-exp density equals MixtureSameFamily."""
    torch.manual_seed(0)
    model = GaussianMixtureModel(5, dim=3, generator=gen(0))
    with torch.no_grad():  # random off-diagonal Cholesky entries and weights
        model.raw_tril.add_(0.5 * torch.randn(model.raw_tril.shape, generator=gen(1)))
        model.logits.add_(torch.randn(5, generator=gen(2)))
    x = torch.randn(50, 3, generator=gen(3)) * 2
    torch.testing.assert_close(model.log_prob(x), as_torch_distribution(model).log_prob(x), rtol=1e-5, atol=1e-5)


def test_mixture_samples_follow_the_model():
    """Samples have the model's mean and covariance (MC, within 4 SE / a few percent)."""
    model = GaussianMixtureModel(3, dim=2, generator=gen(4))
    with torch.no_grad():
        model.raw_tril.add_(0.3 * torch.randn(model.raw_tril.shape, generator=gen(5)))
    ref = as_torch_distribution(model)
    x = model.sample(200_000, gen(6))
    se = x.std(0) / len(x) ** 0.5
    assert torch.all((x.mean(0) - ref.mean).abs() < 4 * se)
    w, mu, L = torch.softmax(model.logits, 0), model.means.detach(), model.scale_tril().detach()
    cov = (w[:, None, None] * (L @ L.mT + (mu - ref.mean)[:, :, None] * (mu - ref.mean)[:, None, :])).sum(0)
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0.02, atol=0.02)  # 200k samples: ~0.5% error


def test_fit_gaussian_is_sample_moments_and_maximises_likelihood():
    """Eq. (eq-ml-gaussian-mle): the closed form is the sample mean and 1/N covariance; the NLL gradient there is 0."""
    A = torch.tensor([[1.0, 0.5], [0.0, 0.7]], dtype=torch.float64)
    x = torch.randn(500, 2, generator=gen(7), dtype=torch.float64) @ A
    mean, cov = fit_gaussian(x)
    torch.testing.assert_close(mean, x.mean(0))
    torch.testing.assert_close(cov, torch.cov(x.T, correction=0))
    m = mean.clone().requires_grad_(True)
    L = torch.linalg.cholesky(cov).requires_grad_(True)
    loss = -torch.distributions.MultivariateNormal(m, scale_tril=L).log_prob(x).mean()
    grads = torch.autograd.grad(loss, (m, L))
    assert all(g.abs().max() < 1e-10 for g in grads)


def test_gradient_descent_reaches_the_closed_form():
    """K = 1 trained by the chapter's recipe (full-batch Adam) reaches the closed-form MLE (to optimiser precision)."""
    x = torch.randn(2000, 2, generator=gen(8)) @ torch.tensor([[1.0, 0.6], [0.0, 0.5]]) + torch.tensor([1.0, -1.0])
    model = GaussianMixtureModel(1, dim=2, init_data=x, generator=gen(9))
    fit_mixture(model, x, n_steps=800, lr=0.03, progress=False)
    mean, cov = fit_gaussian(x)
    L = model.scale_tril()[0].detach()
    torch.testing.assert_close(model.means[0].detach(), mean, atol=5e-3, rtol=0)
    torch.testing.assert_close(L @ L.T, cov, atol=5e-3, rtol=0)


def test_more_components_fit_eight_gaussians_better():
    """MLE with K = 8 on eight Gaussians reaches KL ~ 0; K = 1 cannot (KL > 1 nat)."""
    p, g = eight_gaussians(), gen(10)
    x_train, x_test = p.sample(4000, g), p.sample(10_000, g)
    kls = {}
    for K in (1, 8):
        model = GaussianMixtureModel(K, init_data=x_train, generator=gen(11))
        fit_mixture(model, x_train, n_steps=400, progress=False)
        kls[K] = dgm.metrics.kl_divergence(p, model.log_prob, x_test)
    assert kls[1].value > 1.0
    # (#parameters)/(2N) = 47/8000 ~ 0.006 nats is the expected overfit; allow a local optimum margin
    assert kls[8].value < 0.03, kls


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        fit_gaussian(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="n_components must be a positive int, got 0"):
        GaussianMixtureModel(0)
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        GaussianMixtureModel(2).log_prob(torch.zeros(4, 3))
