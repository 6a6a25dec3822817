"""NVFP4 number formats (E2M1 elements, E4M3 scales) and the random Hadamard transform, against references."""

import math

import pytest
import torch

from modelzoo.fp4_formats import random_bits, round_e2m1_, round_e4m3
from modelzoo.fp4_hadamard import hadamard_matrix, random_hadamard, rotate_rows
from tests.modelzoo.fp4_reference import E2M1, E4M3, round_to_grid

E2M1_TIES = {0.25: 0.0, 0.75: 1.0, 1.25: 1.0, 1.75: 2.0, 2.5: 2.0, 3.5: 4.0, 5.0: 4.0}


def grid_midpoints(grid: list[float]) -> list[float]:
    return [(a + b) / 2 for a, b in zip(grid, grid[1:])]


def round_e2m1(values: torch.Tensor, noise_bits: torch.Tensor | None = None) -> torch.Tensor:
    return round_e2m1_(values.clone(), values.abs(), noise_bits)


def test_e4m3_rounding_matches_bit_level_reference():
    grid = torch.tensor(E4M3, dtype=torch.float64)
    probes = torch.cat([
        grid,
        torch.tensor(grid_midpoints(E4M3), dtype=torch.float64),  # exact ties, including subnormal ones
        torch.rand(4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64).pow(6) * 500,
        torch.tensor([1e-4, 2.0**-10, 449.0, 464.0, 1e6]),  # underflow, half the smallest subnormal, saturation
    ]).float()
    expected = torch.tensor([round_to_grid(v, E4M3) for v in probes.double().tolist()], dtype=torch.float32)
    assert torch.equal(round_e4m3(probes), expected)
    # A second, independent implementation: torch's float8 cast (which needs the saturation done beforehand).
    assert torch.equal(round_e4m3(probes), probes.clamp(max=448).to(torch.float8_e4m3fn).float())
    assert round_e4m3(torch.tensor([2.0**-9, 448.0, 1000.0])).tolist() == [2.0**-9, 448.0, 448.0]


def test_e2m1_nearest_follows_thresholds_with_ties_to_even():
    ties = torch.tensor(list(E2M1_TIES))
    assert round_e2m1(ties).tolist() == list(E2M1_TIES.values())
    assert round_e2m1(-ties).tolist() == [-v for v in E2M1_TIES.values()]
    # Just off a tie the nearer neighbour wins whichever way the tie went.
    above = round_e2m1(torch.nextafter(ties, torch.tensor(7.0)))
    below = round_e2m1(torch.nextafter(ties, torch.tensor(0.0)))
    assert above.tolist() == [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    assert below.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    dense = torch.linspace(-7, 7, 14001)
    expected = [math.copysign(round_to_grid(abs(v), E2M1), v) for v in dense.double().tolist()]
    assert torch.equal(round_e2m1(dense), torch.tensor(expected, dtype=torch.float32))


def test_e2m1_stochastic_rounding_is_unbiased_and_stays_between_neighbours():
    values = torch.tensor([0.1, 0.3, 0.6, 1.2, 1.9, 2.2, 2.75, 3.6, 4.5, 5.9])
    draws = values.repeat(20000, 1)
    bits = random_bits(draws.shape, draws.device, torch.Generator().manual_seed(1))
    rounded = round_e2m1(draws, bits)
    nearest = round_e2m1(values)
    mean_error = (rounded.mean(0) - values).abs()
    assert torch.all(mean_error < (nearest - values).abs())
    assert torch.all(mean_error < 0.02)
    grid = torch.tensor(E2M1)
    lower = grid[torch.searchsorted(grid, values, right=True) - 1]
    upper = grid[torch.searchsorted(grid, values)]
    assert torch.all((rounded == lower) | (rounded == upper))
    # Mirrored draws (bits -> 255 - bits, i.e. dither -> -dither) give exactly the mirrored result.
    assert torch.equal(round_e2m1(-draws, 255 - bits), -rounded)
    on_grid = torch.cat([grid, -grid]).repeat(100, 1)
    assert torch.equal(round_e2m1(on_grid, random_bits(on_grid.shape, on_grid.device, None)), on_grid)


def test_random_bits_follow_the_generator():
    draw = lambda seed: random_bits(torch.Size([5, 7]), torch.device("cpu"), torch.Generator().manual_seed(seed))
    assert draw(3).dtype == torch.uint8 and draw(3).shape == (5, 7)
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_hadamard_is_orthogonal_with_random_signs():
    matrix = random_hadamard(torch.device("cpu"), torch.float64)
    assert torch.allclose(matrix @ matrix.t(), torch.eye(16, dtype=torch.float64), atol=1e-15)
    assert torch.allclose(matrix.t() @ matrix, torch.eye(16, dtype=torch.float64), atol=1e-15)
    assert torch.all(matrix.abs() == 0.25)
    signs = (matrix / hadamard_matrix(16)).sign()[0]
    assert torch.all(signs == (matrix / hadamard_matrix(16)).sign())  # one sign per column
    assert 0 < (signs < 0).sum() < 16
    assert torch.equal(matrix, random_hadamard(torch.device("cpu"), torch.float64))


def test_rotate_rows_preserves_inner_products_over_rows():
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(48, 5, dtype=torch.float64, generator=generator)
    b = torch.randn(48, 3, dtype=torch.float64, generator=generator)
    rotated = rotate_rows(a)
    assert not torch.allclose(rotated, a)
    assert torch.allclose(rotated.t() @ rotate_rows(b), a.t() @ b, atol=1e-12)
    with pytest.raises(ValueError, match="multiple of 16"):
        rotate_rows(a[:40])


def test_hashed_noise_bits_are_uniform_and_differ_between_seeds():
    bits = random_bits(torch.Size([1 << 20]), torch.device("cpu"), torch.Generator().manual_seed(5))
    counts = torch.bincount(bits.long(), minlength=256).double()
    expected = bits.numel() / 256
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < 350  # 255 degrees of freedom: the 99.9th percentile is about 330
    # Neighbouring elements are independent enough for dithering: their bytes agree about 1 time in 256.
    assert abs((bits[1:] == bits[:-1]).double().mean().item() - 1 / 256) < 5e-4
    again = random_bits(torch.Size([1 << 20]), torch.device("cpu"), torch.Generator().manual_seed(6))
    assert (again == bits).double().mean().item() < 0.01
