"""GANs and Wasserstein GANs (chapter 5, seen from the energy view): a generator G(z) is the sampler
of the negative phase, a discriminator or critic plays the role of the (negative) energy.

Networks output real numbers: a discriminator its logit l(x), with D(x) = sigmoid(l(x)); a critic
f(x) its score. Losses are per example, shape (B,), for the pair (x_i, G(z_i)); the caller reduces.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .nets import MLP
from .train import progress_bar
from .utils import check_batch, check_positive_int, check_same_shape


def gan_value(logit_real: torch.Tensor, logit_fake: torch.Tensor) -> torch.Tensor:
    """log D(x) + log(1 - D(G(z))), shape (B,): the minimax value V(D, G) per pair (Eq. (eq-ebm-gan-minimax))."""
    check_same_shape(logit_real, logit_fake, "logit_real", "logit_fake")
    return -F.softplus(-logit_real) - F.softplus(logit_fake)  # log sigmoid(l) = -softplus(-l)


def optimal_discriminator(log_p_data: torch.Tensor, log_p_model: torch.Tensor) -> torch.Tensor:
    """Logit of D*(x) = p_data(x) / (p_data(x) + p_G(x)): log p_data - log p_G (Eq. (eq-ebm-optimal-discriminator))."""
    return log_p_data - log_p_model


def discriminator_loss(disc, x: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
    """-V(D, G) per pair, shape (B,): the discriminator ascends V (binary cross-entropy, real = 1, fake = 0)."""
    return -gan_value(disc(x).squeeze(-1), disc(x_fake).squeeze(-1))


def generator_loss(disc, x_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)), shape (B,) (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-disc(x_fake).squeeze(-1))


def gradient_penalty(critic, x: torch.Tensor, x_fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """(||grad f(x_hat)|| - 1)^2 at x_hat = u x + (1 - u) x_fake, u ~ U[0, 1], shape (B,) (Gulrajani et al. 2017)."""
    check_same_shape(x, x_fake, "x", "x_fake")
    u = torch.rand(len(x), 1, generator=generator, dtype=x.dtype).to(x.device)  # (B, 1)
    x_hat = (u * x + (1 - u) * x_fake.detach()).requires_grad_(True)  # (B, D): on lines between the samples
    grad = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)[0]  # (B, D), differentiable
    return (grad.norm(dim=1) - 1) ** 2


def critic_loss(critic, x: torch.Tensor, x_fake: torch.Tensor, gp_weight: float = 10.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP critic loss f(G(z)) - f(x) + lambda (||grad f(x_hat)|| - 1)^2, shape (B,) (Eq. (eq-ebm-wgan))."""
    loss = critic(x_fake).squeeze(-1) - critic(x).squeeze(-1)
    return loss + gp_weight * gradient_penalty(critic, x, x_fake, generator) if gp_weight else loss


def wgan_generator_loss(critic, x_fake: torch.Tensor) -> torch.Tensor:
    """-f(G(z)), shape (B,): the generator moves its samples up the critic (Eq. (eq-ebm-wgan))."""
    return -critic(x_fake).squeeze(-1)


def train_gan(gen_net, disc, d_loss, g_loss, data, n_steps: int, batch_size: int = 256, latent_dim: int = 2,
              n_critic: int = 1, lr: float = 2e-4, betas=(0.5, 0.9), generator: torch.Generator | None = None,
              progress: bool = True) -> dict[str, list[float]]:
    """Alternate n_critic steps on d_loss(disc, x, x_fake) with one step on g_loss(disc, G(z)); returns histories.

    `data(n)` draws n real examples; z ~ N(0, I_latent_dim). Both losses are per example (B,).
    """
    check_positive_int(n_steps, "n_steps")
    check_positive_int(n_critic, "n_critic")
    device = next(gen_net.parameters()).device
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas)
    noise = lambda: torch.randn(batch_size, latent_dim, generator=generator).to(device)  # noqa: E731
    history = {"d_loss": [], "g_loss": []}
    for step in progress_bar(n_steps, progress):
        # 1. the discriminator / critic: real data against detached generator samples
        for _ in range(n_critic):
            x = data(batch_size).to(device)
            check_batch(x, x.shape[1], "data(batch_size)")
            with torch.no_grad():
                x_fake = gen_net(noise())
            loss_d = d_loss(disc, x, x_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        # 2. the generator: its samples pushed to where the discriminator says data are
        loss_g = g_loss(disc, gen_net(noise())).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
            raise FloatingPointError(f"losses {loss_d.item()}, {loss_g.item()} at step {step}: "
                                     "lower the learning rate")
        history["d_loss"].append(loss_d.item())
        history["g_loss"].append(loss_g.item())
    return history


# -- the recipes of notebook 05b (and the chapter's benchmark) -------------------------------------
def toy_gan(dim: int = 2, latent_dim: int = 2, hidden: int = 64) -> tuple[nn.Module, nn.Module]:
    """The pair of notebook 05b: a generator z (B, latent_dim) -> x (B, dim) and a discriminator / critic
    x (B, dim) -> (B, 1), both MLPs with two hidden layers of `hidden` leaky-ReLU units."""
    return (MLP(latent_dim, dim, hidden=hidden, act=nn.LeakyReLU), MLP(dim, 1, hidden=hidden, act=nn.LeakyReLU))


def fit_gan(gen_net, disc, data, *, n_steps: int = 1500, lr: float = 1e-3, latent_dim: int = 2,
            generator: torch.Generator | None = None, progress: bool = True) -> dict[str, list[float]]:
    """The non-saturating GAN of notebook 05b (Eq. (eq-ebm-gan-minimax)): one discriminator step per generator step,
    Adam (lr, betas (0.5, 0.9)); `data(n)` draws n real examples. Returns the loss histories."""
    return train_gan(gen_net, disc, discriminator_loss, generator_loss, data, n_steps=n_steps, latent_dim=latent_dim,
                     lr=lr, generator=generator, progress=progress)


def fit_wgan_gp(gen_net, critic, data, *, n_steps: int = 300, n_critic: int = 5, gp_weight: float = 1.0,
                lr: float = 1e-3, latent_dim: int = 2, generator: torch.Generator | None = None,
                progress: bool = True) -> dict[str, list[float]]:
    """The WGAN-GP of notebook 05b (Eq. (eq-ebm-wgan)): n_critic critic steps with gradient penalty gp_weight per
    generator step (300 x 5 = 1500 critic updates, as many as the GAN's discriminator gets). Returns the histories."""
    def d_loss(f, x, x_fake):
        return critic_loss(f, x, x_fake, gp_weight=gp_weight, generator=generator)

    return train_gan(gen_net, critic, d_loss, wgan_generator_loss, data, n_steps=n_steps, latent_dim=latent_dim,
                     n_critic=n_critic, lr=lr, generator=generator, progress=progress)
