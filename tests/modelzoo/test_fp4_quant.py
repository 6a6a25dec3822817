"""NVFP4 block quantization against a naive float64 reference, plus its structural guarantees and edge cases."""

import pytest
import torch

from modelzoo.fp4 import fake_quantize, quantize
from tests.modelzoo.fp4_reference import E2M1, E4M3, quantize_blocks


def heavy_tailed(*shape: int, seed: int = 0) -> torch.Tensor:
    """Gaussian values with per-row and per-column magnitudes spread over several decades, like activations."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.logspace(-3, 1, shape[-2])[torch.randperm(shape[-2], generator=generator)]
    cols = torch.logspace(-1, 1, shape[-1])[torch.randperm(shape[-1], generator=generator)]
    return torch.randn(*shape, generator=generator) * rows[:, None] * cols


@pytest.mark.parametrize("shape", [(5, 37), (32, 48), (17, 16)])
def test_1d_blocks_match_reference_along_last_dim(shape):
    x = heavy_tailed(*shape)
    assert torch.allclose(fake_quantize(x).double(), quantize_blocks(x, 1, 16), rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(40, 23), (16, 64), (3, 20, 33)])
def test_2d_blocks_tile_each_matrix_under_one_tensor_scale(shape):
    x = heavy_tailed(*shape, seed=1)
    amax = x.abs().max().item()
    expected = torch.stack([quantize_blocks(m, 16, 16, amax) for m in x.reshape(-1, *shape[-2:])]).reshape(shape)
    assert torch.allclose(fake_quantize(x, blocks="2d").double(), expected, rtol=1e-6, atol=0)


def test_blocks_along_rows_match_reference_on_the_transpose():
    x = heavy_tailed(37, 24, seed=2)
    along_rows = quantize(x, axis=-2).dequantize()
    assert torch.allclose(along_rows.double(), quantize_blocks(x.t(), 1, 16).t(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("blocks", ["1d", "2d"])
def test_values_are_e2m1_times_e4m3_block_scale_over_tensor_scale(blocks):
    x = heavy_tailed(40, 50, seed=3)
    q = quantize(x, blocks=blocks)
    assert torch.isin(q.elements.abs(), torch.tensor(E2M1)).all()
    assert torch.isin(q.block_scales, torch.tensor(E4M3)).all()
    decoded = (q.elements * q.block_scales / q.tensor_scale).flatten(3).flatten(1, 2)[0, :40, :50]
    assert torch.allclose(q.dequantize(), decoded, rtol=1e-6, atol=0)
    assert torch.allclose(q.tensor_scale, 6 * 448 / x.abs().max())


@pytest.mark.parametrize("blocks", ["1d", "2d"])
def test_block_max_maps_to_six_times_its_scale(blocks):
    x = heavy_tailed(64, 48, seed=4)
    q = quantize(x, blocks=blocks)
    block_max = q.elements.abs().amax(dim=(2, 4), keepdim=True)
    # Within E4M3's normal range the scale's rounding error (< 1/16) cannot move the block max off 6.
    normal = q.block_scales >= 2.0**-6
    assert normal.float().mean() > 0.5
    assert torch.all(block_max[normal] == 6.0)
    assert q.block_scales.max() == 448.0
    decoded_max = q.dequantize().abs().amax()
    assert decoded_max == x.abs().max() or torch.isclose(decoded_max, x.abs().max(), rtol=1e-6)


def test_2d_blocks_quantize_the_transpose_identically():
    w = heavy_tailed(40, 72, seed=5)
    assert torch.equal(fake_quantize(w, blocks="2d"), fake_quantize(w.t(), blocks="2d").t())
    assert not torch.equal(fake_quantize(w), fake_quantize(w.t()).t())  # 1x16 blocks are not symmetric


def test_stochastic_rounding_is_unbiased_per_element():
    x = heavy_tailed(4, 32, seed=6)
    # Copies of x share its amax, so one call quantizes 3000 independent draws with x's own scales.
    copies = x.expand(3000, *x.shape).contiguous()
    mean = fake_quantize(copies, rounding="stochastic", generator=torch.Generator().manual_seed(7)).mean(0)
    nearest = fake_quantize(x)
    assert (mean - x).norm() < 0.2 * (nearest - x).norm()
    assert torch.equal(
        fake_quantize(x, rounding="stochastic", generator=torch.Generator().manual_seed(8)),
        fake_quantize(x, rounding="stochastic", generator=torch.Generator().manual_seed(8)),
    )


def test_stochastic_rounding_draws_from_global_rng_without_generator():
    x = heavy_tailed(8, 32, seed=9)
    torch.manual_seed(10)
    first = fake_quantize(x, rounding="stochastic")
    torch.manual_seed(10)
    assert torch.equal(fake_quantize(x, rounding="stochastic"), first)


@pytest.mark.parametrize("blocks", ["1d", "2d"])
def test_zero_tensors_and_zero_blocks_stay_finite(blocks):
    assert torch.equal(fake_quantize(torch.zeros(20, 33), blocks=blocks), torch.zeros(20, 33))
    x = heavy_tailed(32, 32, seed=11)
    x[:16, :16] = 0
    out = fake_quantize(x, blocks=blocks, rounding="stochastic")
    assert torch.isfinite(out).all() and torch.all(out[:16, :16] == 0)
    tiny = torch.full((4, 16), 1e-40)  # float32 subnormals: the tensor scale would overflow unclamped
    assert torch.isfinite(fake_quantize(tiny, blocks=blocks)).all()
    assert fake_quantize(torch.zeros(0, 16), blocks=blocks).shape == (0, 16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_shape_and_dtype_are_preserved(dtype):
    x = heavy_tailed(2, 3, 40, seed=12).to(dtype)
    out = fake_quantize(x)
    assert out.shape == x.shape and out.dtype == dtype
    # With amax 6 both scales are exact (s_enc = block scale = 448), so E2M1 values pass through unchanged.
    representable = torch.tensor([0.0, -0.5, 1.0, 1.5, -2.0, 3.0, 4.0, -6.0], dtype=dtype)
    assert torch.equal(fake_quantize(representable), representable)


@pytest.mark.parametrize("view", [lambda t: t, lambda t: t[:, :32], lambda t: t.t(), lambda t: t[::2]])
@pytest.mark.parametrize("blocks", ["1d", "2d"])
def test_input_is_left_untouched(view, blocks):
    x = heavy_tailed(32, 64, seed=13)
    original = x.clone()
    fake_quantize(view(x), blocks=blocks, rounding="stochastic")
    nearest = fake_quantize(view(x), blocks=blocks)
    assert torch.equal(x, original)
    assert torch.equal(nearest, fake_quantize(view(original).contiguous(), blocks=blocks))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fake_quantize(torch.ones(4, 16), blocks="3d"), "blocks must be '1d' or '2d'"),
        (lambda: fake_quantize(torch.ones(4, 16), rounding="up"), "rounding must be 'nearest' or 'stochastic'"),
        (lambda: fake_quantize(torch.ones(4, 16, dtype=torch.int64)), "floating-point"),
        (lambda: fake_quantize(torch.tensor(1.0)), "at least one dimension"),
        (lambda: quantize(torch.ones(4, 16), axis=0), "axis -1 or -2"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
