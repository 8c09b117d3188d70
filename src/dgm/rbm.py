"""Restricted Boltzmann machines (chapter 5, notebook 05a): energy-based models with binary hidden units.

The hidden layer sums out in closed form (the free energy) and, for a small hidden layer, so does the
partition function: we sum over all 2^H hidden states. That exact log Z makes an RBM's test
log-likelihood measurable. Trained by contrastive divergence (CD-k), persistent CD, or the exact
gradient; the positive-minus-negative-phase loss itself lives in `dgm.ebm` (`contrastive_loss`).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .ebm import contrastive_loss
from .train import train
from .utils import check_batch, check_positive, check_positive_int

MAX_HIDDEN_EXACT = 20  # exact log Z sums 2^H terms: 2^20 ~ 10^6 is seconds on a CPU; each extra unit doubles it


def _check_binary(v: torch.Tensor, dim: int, name: str) -> None:
    check_batch(v, dim, name)
    if not bool(torch.all((v == 0) | (v == 1))):
        raise ValueError(f"{name} must hold only 0s and 1s (binary units), got values in [{v.min()}, {v.max()}]")


def hidden_states(n_hidden: int) -> torch.Tensor:
    """All 2^H binary hidden configurations, shape (2^H, H), as floats."""
    bits = torch.arange(n_hidden)
    return ((torch.arange(2**n_hidden)[:, None] >> bits) & 1).float()  # (2^H, H)


class RBM(nn.Module):
    """Binary-binary RBM: E(x, h) = -a^T x - b^T h - x^T W h, x in {0,1}^D, h in {0,1}^H (Eq. (eq-ebm-rbm-energy))."""

    def __init__(self, n_visible: int, n_hidden: int, init_std: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        check_positive_int(n_visible, "n_visible")
        check_positive_int(n_hidden, "n_hidden")
        self.n_visible, self.n_hidden = n_visible, n_hidden
        self.W = nn.Parameter(init_std * torch.randn(n_visible, n_hidden, generator=generator))  # (D, H)
        self.a = nn.Parameter(torch.zeros(n_visible))  # (D,) visible biases
        self.b = nn.Parameter(torch.zeros(n_hidden))  # (H,) hidden biases

    # -- the energy and the conditionals ----------------------------------------------------------
    def _check_x(self, x):
        _check_binary(x, self.n_visible, "x")

    def hidden_logits(self, x: torch.Tensor) -> torch.Tensor:
        """b + W^T x, shape (B, H): the input of each hidden unit."""
        return self.b + x @ self.W

    def energy(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(x, h), shape (B,) (Eq. (eq-ebm-rbm-energy))."""
        self._check_x(x)
        _check_binary(h, self.n_hidden, "h")
        return -x @ self.a - h @ self.b - ((x @ self.W) * h).sum(1)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = -log sum_h e^{-E(x,h)} = -a^T x - sum_j softplus(b_j + (W^T x)_j), (B,), Eq. (eq-ebm-free-energy)."""
        self._check_x(x)
        return -x @ self.a - F.softplus(self.hidden_logits(x)).sum(1)

    def p_h_given_x(self, x: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | x) = sigmoid(b_j + (W^T x)_j), shape (B, H) (Eq. (eq-ebm-rbm-conditionals))."""
        self._check_x(x)
        return torch.sigmoid(self.hidden_logits(x))

    def p_x_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """p(x_i = 1 | h) = sigmoid(a_i + (W h)_i), shape (B, D) (Eq. (eq-ebm-rbm-conditionals))."""
        _check_binary(h, self.n_hidden, "h")
        return torch.sigmoid(self.a + h @ self.W.T)

    def sample_x(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ p(x | h), shape (B, D): independent Bernoulli pixels."""
        return _bernoulli(self.p_x_given_h(h), generator)

    @torch.no_grad()
    def gibbs(self, x: torch.Tensor, n_steps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """n_steps of block Gibbs sampling x -> h ~ p(h | x) -> x' ~ p(x | h); returns x', shape (B, D)."""
        if not isinstance(n_steps, int) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
        for _ in range(n_steps):
            h = _bernoulli(self.p_h_given_x(x), generator)  # 1. all hidden units at once, given x
            x = self.sample_x(h, generator)  # 2. all visible units at once, given h
        return x

    # -- the partition function, by summing over the hidden states ------------------------------
    def log_sum_x(self, h: torch.Tensor) -> torch.Tensor:
        """log sum_x exp(-E(x, h)) = b^T h + sum_i softplus(a_i + (W h)_i), shape (B,)."""
        return h @ self.b + F.softplus(self.a + h @ self.W.T).sum(1)

    def hidden_log_weights(self, chunk: int = 2**14) -> torch.Tensor:
        """log_sum_x(h) for all 2^H hidden states, shape (2^H,): log p(h) + log Z, in hidden_states order."""
        if self.n_hidden > MAX_HIDDEN_EXACT:
            raise ValueError(
                f"exact log Z sums over 2^n_hidden hidden states: n_hidden <= {MAX_HIDDEN_EXACT} "
                f"(2^{MAX_HIDDEN_EXACT} ~ 10^6 terms) expected, got n_hidden={self.n_hidden} "
                f"(2^{self.n_hidden} = {2**self.n_hidden:,} terms); the cost doubles with every hidden unit")
        h_all = hidden_states(self.n_hidden).to(self.W)  # (2^H, H)
        return torch.cat([self.log_sum_x(h) for h in h_all.split(chunk)])  # chunks keep (chunk, D) in memory

    def log_z(self) -> torch.Tensor:
        """Exact log Z = logsumexp over the 2^H hidden states of log_sum_x(h), a scalar (Eq. (eq-ebm-rbm-log-z))."""
        return torch.logsumexp(self.hidden_log_weights(), dim=0)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = -F(x) - log Z, shape (B,) (Eq. (eq-ebm-boltzmann))."""
        return -self.free_energy(x) - self.log_z()

    @torch.no_grad()
    def sample_exact(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples (n, D): h ~ p(h) by enumerating its 2^H states, then x ~ p(x | h)."""
        p_h = torch.softmax(self.hidden_log_weights(), dim=0)  # (2^H,): the marginal p(h) of the hidden layer
        idx = torch.multinomial(p_h.cpu(), n, replacement=True, generator=generator)  # (n,)
        return self.sample_x(hidden_states(self.n_hidden)[idx].to(self.W), generator)


class GaussianRBM(RBM):
    """Gaussian-binary RBM, E = sum_i (x_i - a_i)^2 / (2 s_i^2) - b^T h - x^T W h / s^2, Eq. (eq-ebm-gaussian-rbm).

    x is real (B, D), the last term is sum_ij x_i W_ij h_j / s_i^2; the standard deviations s (a float or (D,))
    are fixed, not learned.
    """

    def __init__(self, n_visible: int, n_hidden: int, sigma=1.0, init_std: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__(n_visible, n_hidden, init_std=init_std, generator=generator)
        sigma = torch.as_tensor(sigma, dtype=torch.get_default_dtype())
        if sigma.ndim == 0:
            sigma = sigma.expand(n_visible)
        if sigma.shape != (n_visible,):
            raise ValueError(f"sigma must be a float or have shape (D,)=({n_visible},), got {tuple(sigma.shape)}")
        check_positive(sigma, "sigma")
        self.register_buffer("sigma", sigma.clone())

    def _check_x(self, x):
        check_batch(x, self.n_visible, "x")

    def hidden_logits(self, x: torch.Tensor) -> torch.Tensor:
        """b + W^T (x / s^2), shape (B, H)."""
        return self.b + (x / self.sigma**2) @ self.W

    def energy(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(x, h), shape (B,) (Eq. (eq-ebm-gaussian-rbm))."""
        self._check_x(x)
        _check_binary(h, self.n_hidden, "h")
        return (((x - self.a) / self.sigma) ** 2 / 2).sum(1) - h @ self.b - (((x / self.sigma**2) @ self.W) * h).sum(1)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = sum_i (x_i - a_i)^2 / (2 s_i^2) - sum_j softplus(b_j + (W^T x / s^2)_j), shape (B,)."""
        self._check_x(x)
        return (((x - self.a) / self.sigma) ** 2 / 2).sum(1) - F.softplus(self.hidden_logits(x)).sum(1)

    def p_x_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | h) = N(a + W h, diag(s^2)), shape (B, D) (Eq. (eq-ebm-gaussian-rbm))."""
        _check_binary(h, self.n_hidden, "h")
        return self.a + h @ self.W.T

    def sample_x(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ N(a + W h, diag(s^2)), shape (B, D)."""
        mean = self.p_x_given_h(h)
        return mean + self.sigma * torch.randn(mean.shape, generator=generator).to(mean)

    def log_sum_x(self, h: torch.Tensor) -> torch.Tensor:
        """log of the integral of exp(-E(x, h)) dx: complete the square in x, shape (B,)."""
        m = self.a + h @ self.W.T  # (B, D): the mean of p(x | h)
        return h @ self.b + ((m**2 - self.a**2) / (2 * self.sigma**2)).sum(1) + torch.log(
            math.sqrt(2 * math.pi) * self.sigma).sum()


def _bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Bernoulli draws with probabilities p (any shape), drawn on the CPU generator then moved."""
    return (torch.rand(p.shape, generator=generator, dtype=p.dtype).to(p.device) < p).to(p.dtype)


# -- learning: CD-k, persistent CD, exact maximum likelihood -----------------------------------
def cd_loss(rbm: RBM, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """CD-k per example, F(x_n) - F(x~_n), x~_n after k Gibbs steps started AT x_n: shape (B,) (Eq. (eq-ebm-cd)).

    Each negative is paired with the data point its chain started from; x~ is treated as a constant.
    """
    x_neg = rbm.gibbs(x, k, generator)  # (B, D), no graph: gibbs runs under no_grad
    return rbm.free_energy(x) - rbm.free_energy(x_neg)


def exact_nll(rbm: RBM, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) = F(x) + log Z with the exact log Z, shape (B,): the loss of exact maximum likelihood (small H)."""
    return -rbm.log_prob(x)


class PCD:
    """Persistent CD as a loss_fn(rbm, x): the negative chains carry over from call to call (Eq. (eq-ebm-cd))."""

    def __init__(self, chains: torch.Tensor, k: int = 1, generator: torch.Generator | None = None):
        check_positive_int(k, "k")
        self.chains, self.k, self.generator = chains, k, generator  # chains (N, D): the persistent state

    def __call__(self, rbm: RBM, x: torch.Tensor) -> torch.Tensor:
        self.chains = rbm.gibbs(self.chains.to(x), self.k, self.generator)  # continue, never restart at data
        return contrastive_loss(rbm.free_energy, x, self.chains)


# -- the recipe of notebook 05a (and the chapter's benchmark) -----------------------------------------
def digits_rbm(p_on: torch.Tensor, n_hidden: int = 16, init_std: float = 0.01, seed: int = 0) -> RBM:
    """The binarised-digits RBM of notebook 05a: W ~ N(0, init_std^2) from a seeded generator, visible biases at
    logit(p_on), the independent-pixel model's P(pixel on), (D,); so the untrained RBM is that model."""
    rbm = RBM(p_on.shape[-1], n_hidden, init_std=init_std, generator=torch.Generator().manual_seed(seed))
    rbm = rbm.to(p_on.device)
    with torch.no_grad():
        rbm.a.copy_(torch.logit(p_on))
    return rbm


def fit_rbm(rbm: RBM, x: torch.Tensor, loss_fn, *, n_steps: int = 3000, batch_size: int | None = 100,
            lr: float = 1e-2, cosine: bool = True, evaluate=None, every: int | None = None,
            generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """Train an RBM on binary images x (N, D) with Adam and (cosine=True) a cosine-decayed learning rate.

    The recipe of notebook 05a and its benchmark. `loss_fn(rbm, batch)` is CD-k (`cd_loss`), a `PCD`
    instance or `exact_nll` (Eq. (eq-ebm-cd), Eq. (eq-ebm-loglik-grad)); batch_size=None is the full batch.
    `evaluate(rbm, step)` after every `every` steps (optional) records e.g. the exact NLL during training.
    """
    return train(rbm, loss_fn, x, n_steps, batch_size, lr=lr, cosine=cosine, evaluate=evaluate, every=every,
                 generator=generator, progress=progress)


