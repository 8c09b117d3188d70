"""Chapter 4: the variational autoencoder, its importance-weighted bound and the Markovian hierarchical ELBO.

A VAE pairs an amortised encoder q_phi(z | x) = N(mean(x), diag e^log_var(x)) with a decoder
p_theta(x | z) and the prior p(z) = N(0, I), and maximises the ELBO
E_q[log p(x | z)] - KL(q(z | x) || p(z)) (Eq. (eq-vi-vae-objective)) in both sets of parameters.
Encoder and decoder are pluggable: `Encoder(net=...)` and `Decoder(net=...)` take any network, so an
`nn.Linear` pair gives the exact linear-Gaussian model of `dgm.variational`. On the digits the decoder
is a 17-way categorical per pixel (`CategoricalDecoder`), so -ELBO and -IWAE_S bound the *discrete*
NLL of the integer images directly, with no dequantisation.
"""
import math

import torch
from torch import nn

from .nets import MLP
from .train import train
from .utils import check_levels, check_positive_int, randn_like, standard_normal_log_prob
from .variational import LOG_2PI, check_n_samples, diagonal_gaussian_log_prob, gaussian_kl, sample_diagonal_gaussian


def _check_x(x: torch.Tensor, dim: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (B, {dim}), got {shape}")


class Encoder(nn.Module):
    """q_phi(z | x) = N(mean(x), diag e^log_var(x)): x (B, D) -> (mean, log_var), (B, k) each.

    `net` (default an MLP D -> 2k) sees x / input_scale (integer pixels 0..16: input_scale=16).
    """

    def __init__(self, dim: int, latent_dim: int, hidden: int = 256, n_hidden: int = 2, net: nn.Module | None = None,
                 input_scale: float = 1.0, dropout: float = 0.0):
        super().__init__()
        self.dim, self.latent_dim, self.input_scale = dim, latent_dim, input_scale
        self.net = net if net is not None else MLP(dim, 2 * latent_dim, hidden=hidden, n_hidden=n_hidden,
                                                   dropout=dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_x(x, self.dim)
        dtype = next(self.net.parameters()).dtype
        h = self.net(x.to(dtype) / self.input_scale)  # (B, 2k)
        if h.shape != (len(x), 2 * self.latent_dim):
            raise ValueError(f"the encoder network must output shape (B, 2k)=({len(x)}, {2 * self.latent_dim}), "
                             f"got {tuple(h.shape)}")
        mean, log_var = h.chunk(2, dim=-1)
        return mean, log_var


class Decoder(nn.Module):
    """p_theta(x | z) = N(net(z), e^(2 log_scale) I) for continuous data: z (..., B, k) -> log p(x | z) (..., B)."""

    def __init__(self, latent_dim: int, dim: int, hidden: int = 256, n_hidden: int = 2, net: nn.Module | None = None,
                 log_scale: float = 0.0, learn_scale: bool = True):
        super().__init__()
        self.dim, self.latent_dim = dim, latent_dim
        self.net = net if net is not None else MLP(latent_dim, dim, hidden=hidden, n_hidden=n_hidden)
        self.log_scale = nn.Parameter(torch.tensor(float(log_scale)), requires_grad=learn_scale)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] = net(z), shape (..., B, D)."""
        return self.net(z)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; net(z), e^(2 log_scale) I), x (B, D), z (..., B, k) -> (..., B)."""
        _check_x(x, self.dim)
        r = (x - self.mean(z)) / self.log_scale.exp()  # (..., B, D)
        return -0.5 * (r**2).sum(-1) - self.dim * (self.log_scale + 0.5 * LOG_2PI)

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ p(x | z), shape (..., B, D)."""
        mean = self.mean(z)
        eps = randn_like(mean, generator)
        return mean + self.log_scale.exp() * eps


class CategoricalDecoder(nn.Module):
    """p_theta(x | z) = prod_i Categorical(x_i; softmax(logits_i(z))) over the values 0..levels-1 (the digits: 17).

    A distribution on the integer images themselves, so log p(x | z) is a discrete log-probability (<= 0).
    As in chapter 3's CategoricalMADE, `net` gives each pixel `features_per_dim` features h_i(z) and one
    linear map shared by all pixels makes the logits A h_i + b_i: far fewer weights than a
    levels-way output layer per pixel, which a 1000-image training set would memorise.
    """

    def __init__(self, latent_dim: int, dim: int = 64, levels: int = 17, hidden: int = 256, n_hidden: int = 2,
                 features_per_dim: int = 8, dropout: float = 0.0, net: nn.Module | None = None):
        super().__init__()
        check_positive_int(features_per_dim, "features_per_dim")
        if not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an int >= 2 (the pixel values 0..levels-1), got {levels!r}")
        self.dim, self.latent_dim, self.levels, self.features = dim, latent_dim, levels, features_per_dim
        self.net = net if net is not None else MLP(latent_dim, dim * features_per_dim, hidden=hidden,
                                                   n_hidden=n_hidden, dropout=dropout)
        self.head = nn.Linear(features_per_dim, levels, bias=False)  # A, shared by all pixels
        self.bias = nn.Parameter(torch.zeros(dim, levels))  # b_i, one per pixel

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities of every pixel value, z (..., B, k) -> (..., B, D, levels)."""
        h = self.net(z).unflatten(-1, (self.dim, self.features))  # (..., B, D, F)
        return self.head(h) + self.bias  # (..., B, D, L)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) = sum_i log softmax(logits_i(z))[x_i], x (B, D) integers, z (..., B, k) -> (..., B)."""
        _check_x(x, self.dim)
        check_levels(x, self.levels, "x")
        log_p = torch.log_softmax(self.logits(z), dim=-1)  # (..., B, D, L)
        index = x.long().unsqueeze(-1).expand(*log_p.shape[:-1], 1)  # (..., B, D, 1)
        return log_p.gather(-1, index).squeeze(-1).sum(-1)  # (..., B)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] = sum_v v p(x_i = v | z), float, shape (..., B, D)."""
        values = torch.arange(self.levels, dtype=z.dtype, device=z.device)
        return torch.softmax(self.logits(z), dim=-1) @ values

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x ~ p(x | z): every pixel drawn independently given z, int64 (..., B, D)."""
        probs = torch.softmax(self.logits(z), dim=-1)  # (..., B, D, L)
        flat = probs.reshape(-1, self.levels).cpu()
        return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1]).to(z.device)


class VAE(nn.Module):
    """A VAE: encoder q_phi(z | x), decoder p_theta(x | z), prior N(0, I_k), Eq. (eq-vi-vae-objective)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        if encoder.latent_dim != decoder.latent_dim:
            raise ValueError(f"mismatched latent sizes: the encoder has latent_dim={encoder.latent_dim}, "
                             f"the decoder latent_dim={decoder.latent_dim}")
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, encoder.latent_dim

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-example ELBO terms recon, kl, elbo, (B,) each, Eq. (eq-vi-elbo-split).

        recon = log p(x | z) at one reparameterised z ~ q(z | x); kl = KL(q(z | x) || N(0, I)) in closed form
        (Eq. (eq-vi-gauss-kl)); elbo = recon - kl.
        """
        mean, log_var = self.encoder(x)  # (B, k) each
        z = sample_diagonal_gaussian(mean, log_var, 1, generator)[0]  # (B, k) = mean + sigma * eps
        recon = self.decoder.log_prob(x, z)  # (B,)
        kl = gaussian_kl(mean, log_var)  # (B,)
        return dict(recon=recon, kl=kl, elbo=recon - kl)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                    chunk: int = 64) -> torch.Tensor:
        """log w_s = log p(x | z^(s)) + log p(z^(s)) - log q(z^(s) | x), k draws z^(s) ~ q(z | x) iid, (k, B).

        Their mean is an unbiased ELBO estimate. The decoder runs on `chunk` draws at a time (memory).
        """
        check_n_samples(k)
        mean, log_var = self.encoder(x)
        z = sample_diagonal_gaussian(mean, log_var, k, generator)  # (k, B, latent)
        log_prior = standard_normal_log_prob(z)  # (k, B)
        log_q = diagonal_gaussian_log_prob(z, mean, log_var)  # (k, B)
        log_lik = torch.cat([self.decoder.log_prob(x, zc) for zc in z.split(chunk)])  # (k, B)
        return log_lik + log_prior - log_q

    def iwae_bound(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                   chunk: int = 64) -> torch.Tensor:
        """IWAE_S = log (1/S) sum_s w_s <= log p(x), S = k draws, (B,). Eq. (eq-vi-iwae); k = 1: the ELBO estimator."""
        log_w = self.log_weights(x, k, generator, chunk)  # (k, B)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """New data: z ~ N(0, I_k), then x ~ p(x | z); shape (n, D)."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype).to(p.device)
        return self.decoder.sample(z, generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z] at the encoder's mean z = mean(x): the deterministic reconstruction, (B, D)."""
        return self.decoder.mean(self.encoder(x)[0])


def negative_elbo(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Training loss for `dgm.train.train`: -ELBO per example, (B,)."""
    return -model.elbo(x)["elbo"]


def digits_vae(latent_dim: int = 16, hidden: int = 256, n_hidden: int = 2, dropout: float = 0.3,
               levels: int = 17) -> VAE:
    """The digits VAE: MLP encoder on x / 16, MLP decoder to 17 logits per pixel (a categorical), both with dropout."""
    encoder = Encoder(64, latent_dim, hidden=hidden, n_hidden=n_hidden, input_scale=levels - 1, dropout=dropout)
    decoder = CategoricalDecoder(latent_dim, dim=64, levels=levels, hidden=hidden, n_hidden=n_hidden, dropout=dropout)
    return VAE(encoder, decoder)


def fit_digits_vae(model: VAE, x: torch.Tensor, *, n_steps: int = 1000, batch_size: int = 50, lr: float = 3e-3,
                   weight_decay: float = 0.01, evaluate=None, every: int | None = None,
                   generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """-ELBO (one draw per image) with AdamW and a cosine-decayed learning rate on integer images x (N, 64).

    The recipe of notebook 04b and its benchmark, Eq. (eq-vi-vae-objective); returns the loss of every step.
    `evaluate(model, step)` after every `every` steps (optional) records e.g. a validation curve.
    """
    return train(model, negative_elbo, x, n_steps, batch_size, lr=lr, weight_decay=weight_decay, cosine=True,
                 evaluate=evaluate, every=every, generator=generator, progress=progress)


def hierarchical_elbo(x: torch.Tensor, encoders, decoders, generator: torch.Generator | None = None) -> dict:
    """One-draw Markovian hierarchical ELBO, Eq. (eq-vi-hierarchical-elbo), per example (B,) terms.

    Generative chain p(z_T) p(z_{T-1} | z_T) ... p(z_1 | z_2) p(x | z_1), p(z_T) = N(0, I);
    inference chain q(z_1 | x) q(z_2 | z_1) ... q(z_T | z_{T-1}). All conditionals are diagonal Gaussians:
    encoders[t](z_t) -> (mean, log_var) of q(z_{t+1} | z_t) and decoders[t](z_{t+1}) -> (mean, log_var) of
    p(z_t | z_{t+1}), with z_0 = x. The one-draw log-ratio log p(x, z_{1:T}) - log q(z_{1:T} | x) is split into
    reconstruction log p(x | z_1), prior log p(z_T) - log q(z_T | z_{T-1}) and the consistency terms
    sum_{t=1}^{T-1} log p(z_t | z_{t+1}) - log q(z_t | z_{t-1}); elbo is their sum.
    """
    if len(encoders) != len(decoders) or len(encoders) < 1:
        raise ValueError(f"need as many encoders as decoders (T >= 1), got {len(encoders)} and {len(decoders)}")
    # 1. the inference chain: z_t ~ q(z_t | z_{t-1}), reparameterised; keep log q of every draw
    zs, log_q = [x], []
    for encoder in encoders:
        mean, log_var = encoder(zs[-1])
        zs.append(sample_diagonal_gaussian(mean, log_var, 1, generator)[0])  # (B, k_t)
        log_q.append(diagonal_gaussian_log_prob(zs[-1], mean, log_var))  # (B,)
    # 2. the generative chain scored on those draws: log p(z_{t-1} | z_t) for t = T..1 (z_0 = x)
    log_p = [diagonal_gaussian_log_prob(zs[t], *decoders[t](zs[t + 1])) for t in range(len(decoders))]
    log_prior = standard_normal_log_prob(zs[-1])  # (B,): the top latent z_T
    # 3. group the terms as in the chapter (and in chapter 8)
    reconstruction = log_p[0]
    prior = log_prior - log_q[-1]
    consistency = sum((log_p[t] - log_q[t - 1] for t in range(1, len(log_p))), torch.zeros_like(prior))
    return dict(reconstruction=reconstruction, prior=prior, consistency=consistency,
                elbo=reconstruction + prior + consistency)
