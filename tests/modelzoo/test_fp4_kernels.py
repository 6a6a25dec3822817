"""The fused NVFP4 CPU kernels (modelzoo/fp4_kernels.py) against the reference quantisation in fp4_quant: bit for
bit equal, stochastic rounding included, and against the float64 block reference through test_fp4_quant.py
(which runs on the kernels whenever they are built)."""

import pytest
import torch

from modelzoo import fp4_kernels
from modelzoo.fp4_hadamard import random_hadamard, rotate_rows
from modelzoo.fp4_quant import _decode_, quantize, quantize_dequantize
from tests.modelzoo.fp4_reference import quantize_blocks
from tests.modelzoo.test_fp4_quant import heavy_tailed


@pytest.fixture(scope="module", autouse=True)
def kernels() -> None:
    # make test installs a compiler: a failed build here is a failure, not a silent fallback.
    assert fp4_kernels.ensure_built(), "the NVFP4 CPU kernels did not build (see the warning in the log)"


def reference(x: torch.Tensor, **options) -> torch.Tensor:
    quantized = quantize(x, **options)
    return _decode_(quantized.elements, quantized)


def assert_same(fused: torch.Tensor, expected: torch.Tensor) -> None:
    assert fused.shape == expected.shape and fused.dtype == expected.dtype
    assert torch.equal(fused.isnan(), expected.isnan())
    assert torch.equal(fused.nan_to_num(), expected.nan_to_num())


CASES = [
    ((2048, 256), {}),
    ((300, 1000), {"axis": -2}),
    ((5, 37), {}),
    ((37, 5), {"axis": -2}),
    ((3, 40, 33), {"blocks": "2d"}),
    ((256, 48), {"blocks": "2d"}),
    ((2, 3, 40), {"blocks": "1d"}),
]


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("shape, options", CASES)
def test_the_kernels_equal_the_reference_bit_for_bit(shape, options, rounding):
    x = heavy_tailed(*shape, seed=len(shape) + shape[-1])
    fused = quantize_dequantize(x, rounding=rounding, generator=torch.Generator().manual_seed(3), **options)
    expected = reference(x, rounding=rounding, generator=torch.Generator().manual_seed(3), **options)
    assert_same(fused, expected)


def test_the_kernels_match_the_float64_block_reference():
    x = heavy_tailed(64, 80, seed=21)
    torch.testing.assert_close(quantize_dequantize(x).double(), quantize_blocks(x, 1, 16), rtol=1e-6, atol=0)
    torch.testing.assert_close(quantize_dequantize(x, axis=-2).double(), quantize_blocks(x.t(), 1, 16).t(),
                               rtol=1e-6, atol=0)


def test_scale_groups_give_each_part_its_own_tensor_scale_as_in_the_reference():
    x = heavy_tailed(64, 48, seed=22)
    by_row = torch.tensor([0] * 20 + [1] * 30 + [2] * 14).view(1, -1, 1, 1, 1)
    assert_same(quantize_dequantize(x, scale_groups=by_row, num_scale_groups=3),
                reference(x, scale_groups=by_row, num_scale_groups=3))
    slices = torch.tensor([0, 0, 1, 3]).view(1, -1, 1, 1, 1)  # 16-row slices, one group unused
    assert_same(quantize_dequantize(x, axis=-2, scale_groups=slices, num_scale_groups=4),
                reference(x, axis=-2, scale_groups=slices, num_scale_groups=4))
    experts = heavy_tailed(4, 32, 32, seed=23) * torch.tensor([1e-3, 1.0, 10.0, 0.0]).view(4, 1, 1)
    per_expert = torch.arange(4).view(-1, 1, 1, 1, 1)
    assert_same(quantize_dequantize(experts, blocks="2d", scale_groups=per_expert, num_scale_groups=4),
                reference(experts, blocks="2d", scale_groups=per_expert, num_scale_groups=4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_other_dtypes_and_views_go_through_float32_as_in_the_reference(dtype):
    x = heavy_tailed(48, 64, seed=24)
    for view in (x.to(dtype), x.t(), x[:, 5:40], x[::2]):
        assert_same(quantize_dequantize(view), reference(view))
    original = x.clone()
    quantize_dequantize(x, overwrite=False)
    assert torch.equal(x, original)


def test_zeros_subnormals_infinities_and_nans_come_out_as_in_the_reference():
    x = heavy_tailed(32, 48, seed=25)
    x[:16, :16] = 0
    x[20, 3] = 1e-40
    specials = [torch.zeros(20, 33), torch.full((4, 16), 1e-40), torch.zeros(0, 16), x]
    with_inf, with_nan = x.clone(), x.clone()
    with_inf[5, 7] = float("inf")
    with_nan[9, 30] = float("nan")
    for tensor in [*specials, with_inf, with_nan]:
        for blocks in ("1d", "2d"):
            assert_same(quantize_dequantize(tensor, blocks=blocks), reference(tensor, blocks=blocks))


def test_without_a_compiler_quantisation_falls_back_to_the_reference_with_a_warning(monkeypatch, caplog):
    import torch.utils.cpp_extension

    def no_compiler(**_options):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", no_compiler)
    monkeypatch.setattr(fp4_kernels, "_tried", False)
    monkeypatch.setattr(fp4_kernels, "_extension", None)
    assert not fp4_kernels.ensure_built()
    assert "NVFP4 kernels unavailable" in caplog.text and "Ninja is required" in caplog.text
    x = heavy_tailed(16, 48, seed=27)
    assert torch.equal(quantize_dequantize(x, axis=-2), reference(x, axis=-2))


def test_the_environment_switch_keeps_the_reference_path(monkeypatch):
    monkeypatch.setenv(fp4_kernels.ENV_SWITCH, "0")
    monkeypatch.setattr(fp4_kernels, "_tried", False)
    monkeypatch.setattr(fp4_kernels, "_extension", None)
    assert not fp4_kernels.ensure_built()
    x = torch.randn(32, 32)
    assert not fp4_kernels.usable_for(x)
    assert torch.equal(quantize_dequantize(x), reference(x))


def test_the_fast_hadamard_kernel_equals_the_matrix_transform():
    x = heavy_tailed(96, 200, seed=26)
    matrix = random_hadamard(torch.device("cpu"), torch.float64)
    expected = (matrix @ x.double().reshape(6, 16, 200)).reshape(96, 200)
    rotated = rotate_rows(x)
    assert rotated.dtype == torch.float32
    torch.testing.assert_close(rotated.double(), expected, rtol=1e-6, atol=1e-6 * x.abs().max().item())
    assert torch.equal(rotate_rows(x[:, 10:50]), rotate_rows(x[:, 10:50].contiguous()))  # views are read as such
