"""Draw book/figures/change_of_variables.png: conservation of mass under a monotone 1-D map.

Run from anywhere: `.venv/bin/python scripts/figures/change_of_variables.py`.
"""
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from scipy.stats import norm


def g(z):            # generative map x = g(z) = f^{-1}(z)
    return z + 1.5 * np.tanh(3 * z)

def dg(z):
    return 1 + 4.5 / np.cosh(3 * z) ** 2

z = np.linspace(-3.2, 3.2, 2001)
x = g(z)
px = norm.pdf(z) / dg(z)   # p_X(g(z)) = p_Z(z) / |g'(z)|
strips = [(-0.1, 0.2), (1.0, 0.2)]  # strips [z0, z0 + dz] in latent space; their images in data space

plt.rcParams.update({"font.size": 12})
fig = plt.figure(figsize=(6.0, 4.4), dpi=120)
gs = fig.add_gridspec(2, 2, width_ratios=(4, 1.3), height_ratios=(1.7, 4), wspace=0.06, hspace=0.06)
ax = fig.add_subplot(gs[1, 0])
ax_top = fig.add_subplot(gs[0, 0], sharex=ax)
ax_right = fig.add_subplot(gs[1, 1], sharey=ax)

ax.plot(x, z, color="k", lw=1.8)
for z0, dz in strips:
    ax.axvspan(g(z0), g(z0 + dz), color="tab:orange", alpha=0.25, lw=0)
    ax.axhspan(z0, z0 + dz, color="tab:blue", alpha=0.25, lw=0)
ax.set_xlabel("data $x$")
ax.set_ylabel("latent $z = f(x)$")
ax.set_xlim(-4.2, 4.2)
ax.set_ylim(-3.0, 3.0)
ax.text(-3.9, 2.35, "$z = f(x)$", fontsize=11)
ax.grid(alpha=0.3)

ax_top.plot(x, px, color="tab:orange", lw=1.8)
for z0, dz in strips:
    m = (x >= g(z0)) & (x <= g(z0 + dz))
    ax_top.fill_between(x[m], 0, px[m], color="tab:orange", alpha=0.5, lw=0)
ax_top.set_ylim(0, 0.52)
ax_top.set_yticks([0.2, 0.4])
ax_top.set_ylabel("$p_X(x)$")
ax_top.tick_params(labelbottom=False)
ax_top.text(0.5, 0.95, "each shaded area equals\nthe blue one it maps to", transform=ax_top.transAxes,
            fontsize=11, va="top", ha="center")

pz = norm.pdf(z)
ax_right.plot(pz, z, color="tab:blue", lw=1.8)
for z0, dz in strips:
    m = (z >= z0) & (z <= z0 + dz)
    ax_right.fill_betweenx(z[m], 0, pz[m], color="tab:blue", alpha=0.5, lw=0)
ax_right.set_xlim(0, 0.45)
ax_right.set_xticks([0.2, 0.4])
ax_right.set_xlabel("$p_Z(z)$")
ax_right.tick_params(labelleft=False)


fig.savefig(Path(__file__).resolve().parents[2] / "book/figures/change_of_variables.png", bbox_inches="tight")
