"""Figures the notebooks share: 2-D samples and densities, digit grids, loss curves, animations."""
import re

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation as mpl_animation
from matplotlib.colors import PowerNorm

LIM = 3.5  # every 2-D toy set of dgm.data lives inside [-LIM, LIM]^2


def grid(lim: float = LIM, n: int = 200, device=None) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """A square n x n grid on [-lim, lim]^2: meshgrid arrays (n, n) and the points as a (n*n, 2) tensor."""
    if n < 2 or lim <= 0:
        raise ValueError(f"need n >= 2 and lim > 0, got n={n}, lim={lim}")
    xs = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(xs, xs)
    points = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.get_default_dtype(), device=device)
    return xx, yy, points


def _device_of(log_prob, device):
    """The device to evaluate `log_prob` on: given, or that of the model or mixture it belongs to."""
    if device is not None:
        return device
    owner = getattr(log_prob, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        return next(owner.parameters()).device
    return getattr(getattr(owner, "means", None), "device", None)  # dgm.data.GaussianMixture


def _axes(ax, lim, title):
    ax = ax if ax is not None else plt.gca()
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    if title:
        ax.set_title(title)
    return ax


def scatter(x: torch.Tensor, ax=None, lim: float = LIM, title: str | None = None, s: float = 2,
            alpha: float = 0.4, **kwargs):
    """Scatter plot of 2-D samples x (B, 2)."""
    ax = _axes(ax, lim, title)
    x = x.detach().cpu().numpy()
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, linewidths=0, **kwargs)
    return ax


@torch.no_grad()
def density(log_prob, ax=None, lim: float = LIM, n: int = 200, title: str | None = None,
            cmap: str = "viridis", gamma: float = 0.5, device=None):
    """Image of exp(log_prob) on a grid; `log_prob` maps (B, 2) -> (B,). gamma < 1 brightens the tails."""
    ax = _axes(ax, lim, title)
    xx, yy, points = grid(lim, n, _device_of(log_prob, device))
    p = log_prob(points).exp().reshape(n, n).cpu().numpy()
    ax.imshow(p, origin="lower", extent=(-lim, lim, -lim, lim), cmap=cmap, interpolation="bilinear",
              norm=PowerNorm(gamma, vmin=0, vmax=p.max()))
    return ax


@torch.no_grad()
def contours(log_prob, ax=None, lim: float = LIM, n: int = 150, levels: int = 4, depth: float = 6.0,
             title: str | None = None, colors: str = "k", device=None, **kwargs):
    """Contour lines of log_prob on a grid: `levels` lines evenly spaced over the top `depth` nats."""
    ax = _axes(ax, lim, title)
    xx, yy, points = grid(lim, n, _device_of(log_prob, device))
    lp = log_prob(points).reshape(n, n).cpu().numpy()
    ax.contour(xx, yy, lp, levels=np.linspace(lp.max() - depth, lp.max(), levels + 1)[:-1], colors=colors,
               linestyles="solid", **kwargs)
    return ax


def image_grid(x: torch.Tensor, nrow: int = 10, ax=None, title: str | None = None, vmax: float = 16.0):
    """Digits (B, 64) or (B, 1, 8, 8) as one image grid with nrow images per row."""
    x = x.detach().float().cpu().reshape(len(x), 8, 8)
    ncol = -(-len(x) // nrow)
    canvas = torch.full((ncol * 9 + 1, nrow * 9 + 1), float("nan"))
    for i, img in enumerate(x):
        r, c = divmod(i, nrow)
        canvas[1 + 9 * r:9 + 9 * r, 1 + 9 * c:9 + 9 * c] = img
    ax = ax if ax is not None else plt.gca()
    ax.imshow(canvas.numpy(), cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    if title:
        ax.set_title(title)
    return ax


def loss_curve(history, ax=None, title: str | None = "training loss", logy: bool = False, smooth: int = 1,
               label: str | None = None):
    """Loss against step; `smooth` > 1 also draws a running mean over that many steps."""
    ax = ax if ax is not None else plt.gca()
    h = np.asarray(history, dtype=float)
    ax.plot(h, alpha=0.35 if smooth > 1 else 1.0, label=None if smooth > 1 else label)
    if smooth > 1 and len(h) >= smooth:
        ax.plot(np.arange(smooth - 1, len(h)), np.convolve(h, np.ones(smooth) / smooth, "valid"), label=label)
    ax.set(xlabel="step", ylabel="loss", title=title or "")
    if logy:
        ax.set_yscale("log")
    return ax


def animate(frames, draw, figsize=(4, 4), interval: int = 150):
    """An animation embedded as JavaScript HTML (plays in the static book): draw(ax, frame) per frame."""
    frames = list(frames)
    if not frames:
        raise ValueError("animate needs at least one frame")
    from IPython.display import HTML

    fig, ax = plt.subplots(figsize=figsize)

    def update(frame):
        ax.clear()
        draw(ax, frame)

    anim = mpl_animation.FuncAnimation(fig, update, frames=frames, interval=interval)
    html = _offline_buttons(anim.to_jshtml(default_mode="once"))
    plt.close(fig)  # the HTML is the output, not a trailing static figure
    return HTML(html)


_ICONS = {"fa fa-play fa-flip-horizontal": "&#9664;", "fa fa-play": "&#9654;", "fa fa-pause": "&#10074;&#10074;",
          "fa fa-minus": "&minus;", "fa fa-plus": "+", "fa fa-step-backward": "&#9664;|",
          "fa fa-step-forward": "|&#9654;", "fa fa-fast-backward": "|&#9664;&#9664;",
          "fa fa-fast-forward": "&#9654;&#9654;|"}


def _offline_buttons(html: str) -> str:
    """matplotlib's player loads its button icons from a font CDN; use Unicode symbols instead."""
    html = re.sub(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">', "", html)
    return re.sub(r'<i class="(fa [^"]+)"></i>', lambda m: _ICONS.get(m.group(1), ""), html)
