"""dgm.plotting: figures draw for both batch shapes, and animations need no network."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from dgm import plotting
from dgm.data import eight_gaussians
from dgm.digits import load_digits
from dgm.mle import GaussianMixtureModel


def test_animation_is_self_contained_html():
    """The JS-HTML player plays offline: no external stylesheet or script, one frame per input."""
    html = plotting.animate(range(3), lambda ax, f: ax.plot([0, f])).data
    assert not re.search(r'(href|src)="https?://', html)
    assert html.count("data:image/png;base64") == 3
    with pytest.raises(ValueError, match="at least one frame"):
        plotting.animate([], lambda ax, f: None)


def test_image_grid_accepts_flat_and_image_batches():
    x, _ = load_digits("test")
    fig, axes = plt.subplots(1, 2)
    for ax, batch in zip(axes, (x[:12], x[:12].reshape(-1, 1, 8, 8))):
        plotting.image_grid(batch, nrow=5, ax=ax)
    grids = [ax.get_images()[0].get_array() for ax in axes]
    assert grids[0].shape == (3 * 9 + 1, 5 * 9 + 1)
    assert (grids[0] == grids[1]).all()
    plt.close(fig)


def test_density_and_contours_draw_on_the_grid():
    p = eight_gaussians()
    fig, ax = plt.subplots()
    plotting.density(p.log_prob, ax=ax, n=50)
    plotting.contours(p.log_prob, ax=ax, n=50)
    plotting.scatter(p.sample(100), ax=ax)
    plotting.loss_curve([3.0, 2.0, 1.0, 0.5], ax=ax, smooth=2)
    image = ax.get_images()[0].get_array()
    assert image.shape == (50, 50) and image.max() > 0
    model = GaussianMixtureModel(2)  # the grid goes to the device of the model's parameters
    plotting.density(model.log_prob, ax=ax, n=20)
    assert ax.get_images()[-1].get_array().shape == (20, 20)
    plt.close(fig)
    xx, yy, points = plotting.grid(lim=2.0, n=5)
    assert points.shape == (25, 2) and torch.allclose(points[0], torch.tensor([-2.0, -2.0]))
    with pytest.raises(ValueError, match="n >= 2"):
        plotting.grid(n=1)
