"""NVFP4 linear layer: its three GEMMs against float64 references built from the naive block quantizer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo import fp4_kernels
from modelzoo.config import FP4Config
from modelzoo.fp4 import FP4Linear, collect_stats, fake_quantize, linear_fn, make_linear
from modelzoo.fp4_hadamard import random_hadamard
from modelzoo.fp4_linear import weight_gradient
from tests.modelzoo.fp4_reference import quantize_blocks

RECIPE = FP4Config(enabled=True)
NEAREST_NO_RHT = FP4Config(enabled=True, rht=False, stochastic_rounding=False)


def operands(tokens: int = 37, inp: int = 40, out: int = 24, seed: int = 0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, generator=generator, dtype=dtype)
    return make(tokens, inp), make(out, inp) * 0.2, make(out), make(tokens, out)


def run(x, w, b, dy, fp4):
    """Output and gradients of ``linear_fn`` for upstream gradient ``dy``."""
    x, w, b = (t.clone().requires_grad_() for t in (x, w, b))
    y = linear_fn(x, w, fp4, b)
    y.backward(dy)
    return y.detach(), x.grad, w.grad, b.grad


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("fp4", [None, FP4Config(enabled=False)])
def test_disabled_is_exactly_f_linear(fp4):
    x, w, b, dy = operands()
    expected = run(x, w, b, dy, fp4=None)
    x_, w_, b_ = (t.clone().requires_grad_() for t in (x, w, b))
    y = F.linear(x_, w_, b_)
    y.backward(dy)
    for got, want in zip(run(x, w, b, dy, fp4), (y.detach(), x_.grad, w_.grad, b_.grad)):
        assert torch.equal(got, want)
    assert torch.equal(expected[0], y.detach())


@pytest.mark.parametrize("weight_2d_blocks", [True, False])
def test_three_gemms_use_the_reference_quantized_operands(weight_2d_blocks):
    fp4 = FP4Config(enabled=True, rht=False, stochastic_rounding=False, weight_2d_blocks=weight_2d_blocks)
    x, w, b, dy = operands()
    y, dx, dw, db = run(x, w, b, dy, fp4)
    w_fprop, w_dgrad = ((16, 16), (16, 16)) if weight_2d_blocks else ((1, 16), (16, 1))
    expected_y = quantize_blocks(x, 1, 16) @ quantize_blocks(w, *w_fprop).t() + b.double()
    expected_dx = quantize_blocks(dy, 1, 16) @ quantize_blocks(w, *w_dgrad)
    expected_dw = quantize_blocks(dy, 16, 1).t() @ quantize_blocks(x, 16, 1)
    for got, want in [(y, expected_y), (dx, expected_dx), (dw, expected_dw), (db, dy.double().sum(0))]:
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_weight_gradient_quantizes_the_rotated_operands():
    fp4 = FP4Config(enabled=True, rht=True, stochastic_rounding=False)
    _, _, _, dy = operands(tokens=37)
    x = operands(tokens=37, seed=1)[0]
    # Tokens are padded to 48 = 3 slices of 16; the rotation is block-diagonal over them.
    rotation = torch.block_diag(*[random_hadamard(torch.device("cpu"), torch.float64)] * 3)
    pad = lambda t: F.pad(t.double(), (0, 0, 0, 11))
    expected = quantize_blocks(rotation @ pad(dy), 16, 1).t() @ quantize_blocks(rotation @ pad(x), 16, 1)
    got = weight_gradient(dy, x, fp4)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert not torch.allclose(got, weight_gradient(dy, x, NEAREST_NO_RHT))


def test_hadamard_cancels_in_the_weight_gradient_without_quantization():
    x, _, _, dy = operands(tokens=37, dtype=torch.float64)
    rotated = weight_gradient(dy, x, RECIPE, quantized=False)
    plain = weight_gradient(dy, x, NEAREST_NO_RHT, quantized=False)
    torch.testing.assert_close(rotated, dy.t() @ x, rtol=0, atol=1e-12)
    torch.testing.assert_close(plain, dy.t() @ x, rtol=0, atol=1e-12)


def test_full_recipe_stays_close_to_float64_and_stochastic_gradients_are_unbiased():
    torch.manual_seed(0)  # the stochastic rounding draws
    x, w, b, dy = operands(tokens=256, inp=64, out=48, seed=2)
    x64, w64, dy64 = x.double(), w.double(), dy.double()
    y, dx, dw, db = run(x, w, b, dy, RECIPE)
    # Two 4-bit operands per GEMM: a relative error of ~0.1 each on Gaussian data.
    assert relative_error(y, x64 @ w64.t() + b.double()) < 0.25
    assert relative_error(dx, dy64 @ w64) < 0.25
    assert relative_error(dw, dy64.t() @ x64) < 0.25
    torch.testing.assert_close(db.double(), dy64.sum(0), rtol=1e-5, atol=1e-5)
    # E[Q_sr(dy)] = dy, so averaging dgrad over draws converges to dy @ Q(W) (error ~ 1/sqrt(32)); one draw does not.
    target = dy64 @ quantize_blocks(w, 16, 16)
    mean_dx = torch.stack([run(x, w, b, dy, RECIPE)[1] for _ in range(32)]).mean(0)
    assert relative_error(mean_dx, target) < 0.3 * relative_error(dx, target)


def test_stochastic_rounding_draws_from_the_global_rng():
    x, w, b, dy = operands()

    def gradients(seed: int, fp4: FP4Config) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch.cat([g.flatten() for g in run(x, w, b, dy, fp4)[1:]])

    assert torch.equal(gradients(0, RECIPE), gradients(0, RECIPE))
    assert not torch.equal(gradients(0, RECIPE), gradients(1, RECIPE))
    nearest = FP4Config(enabled=True, stochastic_rounding=False)
    assert torch.equal(gradients(0, nearest), gradients(1, nearest))


def test_batched_odd_shapes_zero_and_empty_inputs():
    w, b = operands()[1:3]
    x = torch.randn(2, 7, 40)
    y, dx, dw, db = run(x, w, b, torch.randn(2, 7, 24), RECIPE)
    assert y.shape == (2, 7, 24) and dx.shape == x.shape and dw.shape == w.shape
    y, dx, dw, _ = run(torch.zeros(5, 40), w, b, torch.randn(5, 24), RECIPE)
    assert torch.equal(y, b.expand(5, 24)) and torch.equal(dw, torch.zeros_like(w)) and torch.isfinite(dx).all()
    y, dx, dw, db = run(torch.zeros(0, 40), w, b, torch.zeros(0, 24), RECIPE)
    assert y.shape == (0, 24) and torch.equal(dw, torch.zeros_like(w)) and torch.equal(db, torch.zeros_like(b))


@pytest.mark.parametrize("rht", [True, False])
def test_operands_are_left_untouched(rht):
    x, w, b, dy = operands(tokens=32)  # whole blocks: nothing is padded, so no private copies are made
    for leaf in (x, w, b):
        leaf.requires_grad_()
    originals = [t.detach().clone() for t in (x, w, b, dy)]
    linear_fn(x, w, FP4Config(enabled=True, rht=rht), b).backward(dy)
    for tensor, original in zip((x, w, b, dy), originals):
        assert torch.equal(tensor.detach(), original)


def test_bfloat16_inputs_give_bfloat16_outputs_and_gradients():
    x, w, b, dy = (t.bfloat16() for t in operands())
    y, dx, dw, db = run(x, w, b, dy, RECIPE)
    assert (y.dtype, dx.dtype, dw.dtype, db.dtype) == (torch.bfloat16,) * 4
    assert relative_error(y, x.double() @ w.double().t() + b.double()) < 0.25


def test_feature_mismatch_is_reported():
    with pytest.raises(ValueError, match="x has 40 features but weight expects 41"):
        linear_fn(torch.ones(4, 40), torch.ones(3, 41), RECIPE)


def test_make_linear_keeps_nn_linear_parameters_and_reports_errors():
    assert type(make_linear(40, 24, True, None)) is nn.Linear
    assert type(make_linear(40, 24, True, FP4Config(enabled=False))) is nn.Linear
    layer = make_linear(40, 24, False, RECIPE)
    assert isinstance(layer, FP4Linear)
    plain = nn.Linear(40, 24, bias=False)
    layer.load_state_dict(plain.state_dict())
    assert layer.state_dict().keys() == plain.state_dict().keys()
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(24, 8))
    assert collect_stats(model) == {}
    x = torch.randn(37, 40)
    model(x)
    stats = collect_stats(model)
    activation = ((fake_quantize(x) - x).norm() / x.norm()).item()
    weight = ((fake_quantize(plain.weight, blocks="2d") - plain.weight).norm() / plain.weight.norm()).item()
    assert stats["fp4_layers"] == 1
    assert stats["fp4_activation_error"] == pytest.approx(activation, rel=1e-4)
    assert stats["fp4_weight_error"] == pytest.approx(weight, rel=1e-4)
    assert stats["fp4_error"] == pytest.approx((activation + weight) / 2, rel=1e-4)
    assert 0.01 < stats["fp4_error"] < 0.3


@pytest.mark.timeout(600)  # compiles one small layer forward and backward
def test_compiled_gemms_use_the_reference_quantized_operands():
    # The recipe's layout (16x16 weight tiles, Hadamard-rotated wgrad) with nearest rounding, so the compiled
    # layer is checked against the float64 references exactly as the eager one is above.
    fp4 = FP4Config(enabled=True, rht=True, stochastic_rounding=False)
    x, w, b, dy = operands()
    assert fp4_kernels.ensure_built()  # the fused kernels are custom ops inside the graph: fullgraph proves it
    compiled = torch.compile(linear_fn, fullgraph=True)
    x_, w_, b_ = (t.clone().requires_grad_() for t in (x, w, b))
    y = compiled(x_, w_, fp4, b_)
    y.backward(dy)
    rotation = torch.block_diag(*[random_hadamard(torch.device("cpu"), torch.float64)] * 3)
    pad = lambda t: F.pad(t.double(), (0, 0, 0, 11))  # 37 tokens -> 3 slices of 16
    expected_y = quantize_blocks(x, 1, 16) @ quantize_blocks(w, 16, 16).t() + b.double()
    expected_dx = quantize_blocks(dy, 1, 16) @ quantize_blocks(w, 16, 16)
    expected_dw = quantize_blocks(rotation @ pad(dy), 16, 1).t() @ quantize_blocks(rotation @ pad(x), 16, 1)
    expected = [(y.detach(), expected_y), (x_.grad, expected_dx), (w_.grad, expected_dw), (b_.grad, dy.double().sum(0))]
    for got, want in expected:
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
