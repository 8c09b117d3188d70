"""Small networks shared by the chapters: a plain MLP and an MLP conditioned on a per-example scalar.

The mathematics of each chapter lives in its own module; these are only function approximators.
`TimeMLP` serves every network that also sees a time t, a noise level sigma or a log-SNR lambda
(score networks, DDPM's eps-network, VDM's denoiser): the caller decides what the scalar means.
"""
import math

import torch
from torch import nn

from .utils import check_batch, check_positive_int, per_example


def MLP(d_in: int, d_out: int, hidden: int = 128, n_hidden: int = 2, act=nn.SiLU, dropout: float = 0.0,
        zero_last: bool = False) -> nn.Sequential:
    """A fully connected network d_in -> hidden (x n_hidden) -> d_out: (B, d_in) -> (B, d_out).

    `act` (a module class: nn.SiLU, nn.ReLU for flow conditioners, nn.Tanh for a smooth CNF field) and,
    if dropout > 0, nn.Dropout follow each hidden layer. zero_last=True zeroes the last layer's weight
    and bias, so the network outputs 0 at initialisation (a coupling layer then starts as the identity).
    """
    for name, value in (("d_in", d_in), ("d_out", d_out), ("hidden", hidden), ("n_hidden", n_hidden)):
        check_positive_int(value, name)
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers, width = [], d_in
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden), act()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        width = hidden
    last = nn.Linear(width, d_out)
    if zero_last:  # after the default initialisation, so the other layers draw the same random weights
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class FourierEmbedding(nn.Module):
    """c (B,) -> (B, emb_dim): [sin(2 pi f_k c), cos(2 pi f_k c)] at fixed random frequencies f_k."""

    def __init__(self, emb_dim: int = 32, scale: float = 4.0, seed: int = 0):
        super().__init__()
        if not isinstance(emb_dim, int) or emb_dim < 2 or emb_dim % 2:
            raise ValueError(f"emb_dim must be an even int >= 2, got {emb_dim!r}")
        g = torch.Generator().manual_seed(seed)  # fixed frequencies: the same network in every run
        self.register_buffer("freqs", scale * torch.randn(emb_dim // 2, generator=g))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * c[:, None] * self.freqs  # (B, emb_dim / 2)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, emb_dim)


class TimeMLP(nn.Module):
    """eps_hat / score / x0_hat network: (x (B, D), c (B,) or float) -> (B, D).

    The conditioning scalar c (a time t in [0, 1], a noise level or a log-SNR) is embedded with
    Fourier features and concatenated to x; keep c of order one (pass t, log sigma or lambda / 10).
    """

    def __init__(self, dim: int, hidden: int = 128, n_hidden: int = 3, emb_dim: int = 32):
        super().__init__()
        self.dim = dim
        self.embed = FourierEmbedding(emb_dim)
        self.net = MLP(dim + emb_dim, dim, hidden=hidden, n_hidden=n_hidden)

    def forward(self, x: torch.Tensor, c) -> torch.Tensor:
        check_batch(x, self.dim, "x")
        c = per_example(c, x, "c")  # (B,): one float for the whole batch, or one value per example
        return self.net(torch.cat([x, self.embed(c)], dim=1))  # (B, D)
