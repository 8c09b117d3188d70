"""dgm.parameterisations: the data scaling to [-1, 1] that chapters 7 and 8 share, and the shape checks of
the conversions between x_0, eps and v (their algebra: tests/test_diffusion.py::test_tweedie_and_conversions)."""
import pytest
import torch
from conftest import gen

from dgm.parameterisations import eps_from_v, eps_from_x0, from_grid, grid_values, to_grid, v_from_x0_eps, x0_from_eps


def test_grid_round_trip():
    """Eq. (eq-vdm-reconstruction): pixel k of `levels` sits at c_k = 2 k / (levels - 1) - 1 (for the digits k / 8 - 1),
    the grid_values; from_grid inverts it exactly for any shape, clips samples outside [-1, 1] to 0 and levels - 1."""
    for levels, shape in ((17, (5, 64)), (17, (3, 1, 8, 8)), (2, (4, 10))):
        k = torch.randint(0, levels, shape, generator=gen(levels))
        x = to_grid(k, levels)
        assert x.shape == shape and x.dtype == torch.get_default_dtype()
        torch.testing.assert_close(x, grid_values(levels)[k])
        torch.testing.assert_close(from_grid(x, levels), k.float())
    k = torch.randint(0, 17, (6, 64), generator=gen(0))
    torch.testing.assert_close(to_grid(k), k.float() / 8 - 1)  # the digits' scaling of chapter 7
    torch.testing.assert_close(from_grid(torch.tensor([[-1.7, 0.0, 2.5]])), torch.tensor([[0.0, 8.0, 16.0]]))


def test_bad_input():
    """Eq. (eq-vdm-parameterisations), Eq. (eq-vdm-v): pixels off 0..levels-1, float pixels, and two tensors of
    different shapes (which would broadcast) raise ValueErrors naming what was expected and given."""
    with pytest.raises(ValueError, match="0..16"):
        to_grid(torch.tensor([[0, 17]]))
    with pytest.raises(ValueError, match="integers"):
        to_grid(torch.tensor([[0.5]]))
    with pytest.raises(ValueError, match="floating-point"):
        from_grid(torch.tensor([[3]]))
    x, bad = torch.zeros(4, 2), torch.zeros(4, 1)
    for fn in (x0_from_eps, eps_from_x0, v_from_x0_eps, eps_from_v):
        with pytest.raises(ValueError, match=r"\(4, 2\) and .* \(4, 1\)"):
            fn(x, bad, 0.6, 0.8)
