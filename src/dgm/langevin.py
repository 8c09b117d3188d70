"""Chapter 6, Langevin dynamics: sampling from p(x) with nothing but its score grad_x log p(x).

The unadjusted Langevin update with step size eps (Eq. (eq-sm-langevin)),
    x_{k+1} = x_k + eps * score(x_k) + sqrt(2 eps) * z_k,    z_k ~ N(0, I),
has p as its stationary distribution as eps -> 0 (Thm. (thm-sm-langevin-stationary)); for finite eps
it samples a slightly wider distribution (for N(mu, s^2): variance s^2 / (1 - eps / (2 s^2))).
Song & Ermon (2019) write the same update with alpha = 2 eps: x + alpha/2 score + sqrt(alpha) z.

Annealed Langevin (Eq. (eq-sm-annealed)) runs a few steps at each level of a noise ladder
sigma_1 < ... < sigma_L (noise grows with the index, as everywhere in the book), from sigma_L down
to sigma_1, with the step scaled as eps_i = step_size * sigma_i^2 / sigma_1^2 and score(x, sigma_i)
the score of the data convolved with N(0, sigma_i^2 I). The chains then sample q_{sigma_1}; with
denoise=True one final Tweedie step x + sigma_1^2 score(x, sigma_1) = E[x_0 | x] (estimated) removes
the last level's noise (Song & Ermon 2020; Jolicoeur-Martineau et al. 2021).
"""
import math

import torch

from .utils import check_positive, check_positive_int, check_same_shape, randn_like


def check_ladder(sigmas) -> torch.Tensor:
    """The noise ladder as a 1-D float64 tensor; ValueError unless non-empty, positive, strictly increasing."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten().cpu()
    if sigmas.numel() == 0:
        raise ValueError("sigmas must be a non-empty ladder sigma_1 < ... < sigma_L, got an empty one")
    check_positive(sigmas, "sigmas")
    if sigmas.numel() > 1 and not bool(torch.all(sigmas[1:] > sigmas[:-1])):
        raise ValueError(f"sigmas must be strictly increasing (sigma_1 < ... < sigma_L), got {sigmas.tolist()}")
    return sigmas


def langevin(score, x: torch.Tensor, step_size: float, n_steps: int, generator=None, return_path=False):
    """n_steps of unadjusted Langevin from x with score(x) -> (B, D). Eq. (eq-sm-langevin).

    Returns the final x, shape of x; with return_path=True also the list of the n_steps + 1 states.
    """
    check_positive(step_size, "step_size")
    check_positive_int(n_steps, "n_steps")
    x = x.detach()
    path = [x]
    for _ in range(n_steps):
        # 1. drift up the log-density, 2. add noise of variance 2 eps
        s = score(x)
        check_same_shape(s, x, "score(x)", "x")  # no silent broadcasting of a (B, 1) score
        x = x + step_size * s + math.sqrt(2 * step_size) * randn_like(x, generator)
        x = x.detach()  # a sampler: never backpropagate through the chain
        if return_path:
            path.append(x)
    return (x, path) if return_path else x


def annealed_langevin(score, x: torch.Tensor, sigmas, step_size: float, n_steps_each: int,
                      generator=None, return_path=False, denoise=False):
    """Annealed Langevin over the ladder sigmas (increasing), visited from sigma_L down. Eq. (eq-sm-annealed).

    score(x, sigma) -> (B, D) with sigma a Python float; step_size is the step at sigma_1, and level i
    uses eps_i = step_size * sigma_i^2 / sigma_1^2 (Song & Ermon 2019, Algorithm 1). denoise=True ends
    with the Tweedie step x + sigma_1^2 score(x, sigma_1), the estimated E[x_0 | x] (Eq. (eq-prob-tweedie)).
    Returns the final x; with return_path=True also the list of all L * n_steps_each + 1 states (one
    more, the denoised one, with denoise=True).
    """
    sigmas = check_ladder(sigmas)
    check_positive(step_size, "step_size")
    check_positive_int(n_steps_each, "n_steps_each")
    x = x.detach()
    path = [x]
    for sigma in sigmas.flip(0).tolist():  # sigma_L, ..., sigma_1
        eps = step_size * sigma**2 / sigmas[0].item() ** 2
        for _ in range(n_steps_each):
            # 1. drift along the score of the data noised at level sigma, 2. add noise of variance 2 eps_i
            x = x + eps * _score_at(score, x, sigma) + math.sqrt(2 * eps) * randn_like(x, generator)
            x = x.detach()
            if return_path:
                path.append(x)
    if denoise:  # 3. Tweedie: the posterior mean of the clean point given x ~ q_{sigma_1}
        sigma_1 = sigmas[0].item()
        x = (x + sigma_1**2 * _score_at(score, x, sigma_1)).detach()
        if return_path:
            path.append(x)
    return (x, path) if return_path else x


def _score_at(score, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """score(x, sigma), checked to have the shape of x."""
    s = score(x, sigma)
    check_same_shape(s, x, "score(x, sigma)", "x")
    return s
