"""Chapter 3: autoregressive models. Masked networks (MADE) and causal, dilated convolutions.

An autoregressive model writes p(x) = prod_i p(x_i | x_<i) under an ordering of the dimensions
(Eq. (eq-ar-chain-rule)). MADE (Germain et al., 2015) computes all D conditionals in one pass by
masking the weights of an MLP; a stack of dilated causal convolutions (WaveNet, van den Oord et
al., 2016) does the same along a sequence, with a receptive field that doubles with every layer.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .mle import nll
from .train import train
from .utils import check_batch, check_levels, check_positive_int


def check_order(order, dim: int) -> torch.Tensor:
    """`order` as an int64 (D,) tensor; ValueError unless it is a permutation of range(dim)."""
    if order is None:
        return torch.arange(dim)
    order = torch.as_tensor(order).detach().cpu()
    if order.shape != (dim,) or order.is_floating_point() or not torch.equal(order.sort().values, torch.arange(dim)):
        raise ValueError(f"order must be a permutation of range({dim}), got {order.tolist()}")
    return order.long()


def made_masks(order: torch.Tensor, hidden: tuple[int, ...], out_per_dim: int = 1) -> list[torch.Tensor]:
    """The MADE masks (out, in) of every layer from the degrees of the units, Eq. (eq-ar-made-mask).

    Input j gets degree m(j) = order[j] + 1 in 1..D; hidden unit k of every layer gets a degree in
    1..D-1 (cycled, so each is used); a hidden unit sees the units below it of degree <= its own,
    and output i (its `out_per_dim` units) sees the last hidden units of degree < m(i). So output i
    depends only on inputs j with order[j] < order[i].
    """
    D = len(order)
    m_in = order + 1  # (D,) degrees 1..D
    degrees = [m_in]
    for h in hidden:
        degrees.append(torch.arange(h) % max(D - 1, 1) + 1)  # (h,) degrees 1..D-1
    masks = [(m_out[:, None] >= m_prev[None, :]).float() for m_prev, m_out in zip(degrees[:-1], degrees[1:])]
    m_out = m_in.repeat_interleave(out_per_dim)  # (D * k,): unit i * k + c belongs to output i
    masks.append((m_out[:, None] > degrees[-1][None, :]).float())  # strict: output i never sees x_i
    return masks


class MaskedLinear(nn.Linear):
    """A linear layer y = (W * M) x + b whose fixed 0/1 mask M (out, in) removes connections."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"mask must have shape (out_features, in_features)=({out_features}, {in_features}), "
                             f"got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)  # (B, out)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation: (B, D) -> (B, D, out_per_dim), Eq. (eq-ar-made-mask).

    Output i (all `out_per_dim` numbers of it, e.g. logits or a mean and log-scale) depends only on
    the inputs j with order[j] < order[i]; `order[j]` is the position of dimension j in the chain
    rule (default: raster order 0..D-1). The last layer is `self.net[-1]` (zero it for an identity MAF).
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (256, 256), out_per_dim: int = 1, order=None,
                 dropout: float = 0.0):
        super().__init__()
        check_positive_int(dim, "dim")
        check_positive_int(out_per_dim, "out_per_dim")
        if len(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty tuple of layer sizes, got {hidden!r}")
        for k, h in enumerate(hidden):
            check_positive_int(h, f"hidden[{k}]")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dim, self.out_per_dim = dim, out_per_dim
        self.register_buffer("order", check_order(order, dim))
        masks = made_masks(self.order, tuple(hidden), out_per_dim)
        sizes = [dim, *hidden, dim * out_per_dim]
        layers = []
        for n_in, n_out, mask in zip(sizes[:-2], sizes[1:-1], masks[:-1]):  # hidden layers
            layers += [MaskedLinear(n_in, n_out, mask), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(MaskedLinear(sizes[-2], sizes[-1], masks[-1]))  # output layer, no activation
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.dim, "x")
        return self.net(x).reshape(len(x), self.dim, self.out_per_dim)  # (B, D, k)


class CategoricalMADE(nn.Module):
    """A MADE with a `levels`-way softmax per pixel: exact discrete log p(x), Eq. (eq-ar-categorical-nll).

    log p(x) = sum_i log softmax(logits_i(x_<i))[x_i] (the chain rule, Eq. (eq-ar-chain-rule)). The
    network sees the pixels scaled to [0, 1]; the MADE gives each pixel `features_per_dim` masked
    features h_i, and one linear map shared by all pixels turns them into logits, A h_i + b_i. The
    sharing (levels x features weights instead of a levels-way output layer per pixel) is what keeps
    a 1000-image training set from being memorised. Sampling draws the pixels one at a time in the order.
    """

    def __init__(self, dim: int = 64, levels: int = 17, hidden: tuple[int, ...] = (1024,), order=None,
                 features_per_dim: int = 8, dropout: float = 0.0):
        super().__init__()
        if not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an int >= 2, got {levels!r}")
        check_positive_int(features_per_dim, "features_per_dim")
        self.dim, self.levels = dim, levels
        self.made = MADE(dim, hidden=hidden, out_per_dim=features_per_dim, order=order, dropout=dropout)
        self.head = nn.Linear(features_per_dim, levels, bias=False)  # A, shared by all pixels
        self.bias = nn.Parameter(torch.zeros(dim, levels))  # b_i, one per pixel

    @property
    def order(self) -> torch.Tensor:
        return self.made.order

    def check_x(self, x: torch.Tensor) -> None:
        """ValueError unless x is an integer (B, D) batch with values in 0..levels-1."""
        check_levels(x, self.levels, "x")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be an integer tensor of shape (B, {self.dim}), got {tuple(x.shape)}")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities of every pixel value given the earlier pixels, (B, D, levels)."""
        self.check_x(x)
        h = self.made(x.to(self.bias.dtype) / (self.levels - 1))  # (B, D, features): h_i sees only x_<i
        return self.head(h) + self.bias  # (B, D, levels)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact discrete log-likelihood in nats, shape (B,): sum over pixels of log p(x_i | x_<i)."""
        log_p = torch.log_softmax(self.logits(x), dim=-1)  # (B, D, levels)
        return log_p.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).sum(-1)  # (B,)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, D) int64, one pixel per network pass in the order (D passes; call .eval() first)."""
        x = torch.zeros(n, self.dim, dtype=torch.long, device=self.order.device)
        for i in torch.argsort(self.order).tolist():  # dimension i is the next one in the order
            probs = torch.softmax(self.logits(x)[:, i], dim=-1)  # (n, levels): p(x_i | x_<i)
            x[:, i] = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(x.device)
        return x


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution whose output at t sees only the inputs t, t-d, ..., t-(k-1)d: (B, C, T) -> (B, C_out, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1):
        check_positive_int(kernel_size, "kernel_size")
        check_positive_int(dilation, "dilation")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation  # pad the past only, so nothing leaks from the future

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, T), got {tuple(x.shape)}")
        return super().forward(F.pad(x, (self.left_pad, 0)))  # (B, C_out, T)


def receptive_field(kernel_size: int, dilations) -> int:
    """Number of inputs one output of a causal stack sees, 1 + sum_l (k - 1) d_l, Eq. (eq-ar-receptive-field)."""
    check_positive_int(kernel_size, "kernel_size")
    dilations = list(dilations)
    for k, d in enumerate(dilations):
        check_positive_int(d, f"dilations[{k}]")
    return 1 + sum((kernel_size - 1) * d for d in dilations)


class DilatedCausalStack(nn.Module):
    """WaveNet-style stack of causal convolutions with dilations 1, 2, 4, ..., 2^(L-1): (B, C, T) -> (B, C, T).

    Each layer is a residual block x + tanh(conv(x)); with k = 2 an output sees 2^L inputs.
    """

    def __init__(self, channels: int, n_layers: int, kernel_size: int = 2):
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(n_layers, "n_layers")
        self.dilations = [2**layer for layer in range(n_layers)]
        self.kernel_size = kernel_size
        self.layers = nn.ModuleList(CausalConv1d(channels, channels, kernel_size, d) for d in self.dilations)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.kernel_size, self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.layers:
            x = x + torch.tanh(conv(x))  # (B, C, T)
        return x


# -- the recipe of notebook 03 and benchmark 3 ---------------------------------------------------------
def digits_made(order=None, *, hidden: tuple[int, ...] = (1024,), dropout: float = 0.5,
                features_per_dim: int = 8) -> CategoricalMADE:
    """The CategoricalMADE of notebook 03 for the 8x8 digits (64 pixels, 17 levels), in raster or a given order."""
    return CategoricalMADE(dim=64, levels=17, hidden=hidden, order=order, features_per_dim=features_per_dim,
                           dropout=dropout)


def fit_made(model: CategoricalMADE, x_train: torch.Tensor, *, n_steps: int = 500, batch_size: int = 100,
             lr: float = 3e-3, weight_decay: float = 0.05, evaluate=None, every: int | None = None,
             generator: torch.Generator | None = None, progress: bool = True) -> list[float]:
    """AdamW on the exact NLL, Eq. (eq-ar-categorical-nll), of integer images x_train (N, D); per-step losses.

    The recipe of notebook 03 and benchmark 3. `evaluate(model, step)` / `every` record a validation
    curve as in `dgm.train.train`. Call model.eval() afterwards: dropout is on during training.
    """
    return train(model, nll, x_train, n_steps, batch_size, lr=lr, weight_decay=weight_decay, evaluate=evaluate,
                 every=every, generator=generator, progress=progress)
