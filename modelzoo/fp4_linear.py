"""An NVFP4-emulated linear layer: the three GEMMs of a training step, each with both operands quantized.

With ``y = x W^T`` (x: tokens x in, W: out x in) and ``dy`` the incoming gradient, the recipe of
arXiv 2509.25149 is

- fprop  ``y  = Q(x) Q(W)^T``                       x in 1x16 blocks along ``in``, W in 16x16 tiles
- dgrad  ``dx = Q_sr(dy) Q(W)``                     dy in 1x16 blocks along ``out``; the same quantized W
- wgrad  ``dW = Q_sr(R dy)^T Q(R x)``               both in 16x1 blocks along tokens, ``R`` the random Hadamard
                                                     transform on 16-token slices

where every block runs along the GEMM's reduction dimension, ``Q`` rounds to nearest-even and ``Q_sr`` rounds
stochastically (gradients only). Products accumulate in float32 (float64 for float64 inputs). Each choice
follows an ``FP4Config`` switch so that ablations can turn it off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.config import FP4Config
from modelzoo.fp4_hadamard import RHT_SIZE, rotate_rows
from modelzoo.fp4_quant import Rounding, quantize_dequantize


@dataclass
class FP4Stats:
    """Relative quantization error ``||Q(t) - t|| / ||t||`` of the operands of the latest NVFP4 forward GEMM.

    Kept as detached 0-d tensors so recording never synchronises an accelerator; read them as floats.
    """

    activation_error: torch.Tensor | None = None
    weight_error: torch.Tensor | None = None


def _relative_error(quantized: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """``||q - x|| / ||x||`` (0 for x = 0) from three dot products, so no error tensor is materialised."""
    q, x = quantized.flatten(), exact.flatten()
    exact_sq = torch.dot(x, x)
    error_sq = (torch.dot(q, q) - 2 * torch.dot(q, x) + exact_sq).clamp(min=0)
    return (error_sq / exact_sq).sqrt().nan_to_num_(nan=0.0).detach()


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _gradient_rounding(fp4: FP4Config) -> Rounding:
    return "stochastic" if fp4.stochastic_rounding else "nearest"


def weight_gradient(dy: torch.Tensor, x: torch.Tensor, fp4: FP4Config, *, quantized: bool = True) -> torch.Tensor:
    """``dy^T x`` over the token dimension as the NVFP4 wgrad GEMM computes it (2-D operands, tokens first).

    Tokens are zero-padded to a multiple of 16 so the Hadamard transform sees whole slices; the padded rows are
    kept through the product (after the transform they are no longer zero, but they still add up to nothing).
    ``quantized=False`` skips quantization only, which exposes the transform on its own.
    """
    rotated = fp4.rht
    if rotated:
        pad = -dy.shape[0] % RHT_SIZE
        if pad:
            dy, x = F.pad(dy, (0, 0, 0, pad)), F.pad(x, (0, 0, 0, pad))
        dy, x = rotate_rows(dy), rotate_rows(x)
    if quantized:
        # Rotated operands are fresh tensors of this function, so quantization may reuse their storage.
        dy = quantize_dequantize(dy, rounding=_gradient_rounding(fp4), axis=-2, overwrite=rotated)
        x = quantize_dequantize(x, axis=-2, overwrite=rotated)
    return dy.t() @ x


class _NVFP4Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, fp4: FP4Config):  # type: ignore[override]
        """Returns the output and the relative errors of the quantized activation and weight."""
        dtype = _accumulation_dtype(x.dtype)
        x2 = x.reshape(-1, x.shape[-1]).to(dtype)
        w = weight.to(dtype)
        qx = quantize_dequantize(x2)
        qw = quantize_dequantize(w, blocks="2d" if fp4.weight_2d_blocks else "1d")
        y = qx @ qw.t() if bias is None else torch.addmm(bias.to(dtype), qx, qw.t())
        # The errors leave as outputs, not by writing to an object: torch.compile traces this function as a
        # subgraph, and tensors escaping it through side effects cannot be captured.
        errors = (_relative_error(qx, x2), _relative_error(qw, w))
        ctx.mark_non_differentiable(*errors)
        # 16x16 tiles give dgrad the very same quantized weight; 1x16 blocks must be redone along ``out``.
        ctx.save_for_backward(x2, qw if fp4.weight_2d_blocks else w)
        ctx.fp4 = fp4
        ctx.shapes = (x.shape, x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return y.reshape(*x.shape[:-1], weight.shape[0]).to(x.dtype), *errors

    @staticmethod
    def backward(ctx, dy, _activation_error, _weight_error):  # type: ignore[override]
        x2, w = ctx.saved_tensors
        fp4: FP4Config = ctx.fp4
        x_shape, x_dtype, w_dtype, b_dtype = ctx.shapes
        dy2 = dy.reshape(-1, dy.shape[-1]).to(x2.dtype)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            q_dy = quantize_dequantize(dy2, rounding=_gradient_rounding(fp4))
            q_w = w if fp4.weight_2d_blocks else quantize_dequantize(w, axis=-2)
            dx = (q_dy @ q_w).reshape(x_shape).to(x_dtype)
        if ctx.needs_input_grad[1]:
            dw = weight_gradient(dy2, x2, fp4).to(w_dtype)
        if b_dtype is not None and ctx.needs_input_grad[2]:
            db = dy2.sum(0).to(b_dtype)
        return dx, dw, db, None


def linear_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    fp4: FP4Config | None,
    bias: torch.Tensor | None = None,
    *,
    stats: FP4Stats | None = None,
) -> torch.Tensor:
    """``x @ weight^T (+ bias)``: NVFP4-emulated when ``fp4`` is enabled, otherwise exactly ``F.linear``.

    ``stats``, when given, receives the quantization errors of this call's operands.
    """
    if fp4 is None or not fp4.enabled:
        return F.linear(x, weight, bias)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear_fn: x has {x.shape[-1]} features but weight expects {weight.shape[-1]}")
    y, activation_error, weight_error = _NVFP4Linear.apply(x, weight, bias, fp4)
    if stats is not None:
        stats.activation_error, stats.weight_error = activation_error, weight_error
    return y


class FP4Linear(nn.Linear):
    """``nn.Linear`` whose GEMMs are NVFP4-emulated; same parameters and state_dict keys as ``nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool, fp4: FP4Config) -> None:
        super().__init__(in_features, out_features, bias)
        self.fp4 = fp4
        self.fp4_stats = FP4Stats()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_fn(x, self.weight, self.fp4, self.bias, stats=self.fp4_stats)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, fp4={self.fp4}"


def make_linear(in_features: int, out_features: int, bias: bool, fp4: FP4Config | None) -> nn.Linear:
    """An ``FP4Linear`` when ``fp4`` is enabled, else a plain ``nn.Linear`` (high-precision island)."""
    if fp4 is None or not fp4.enabled:
        return nn.Linear(in_features, out_features, bias)
    return FP4Linear(in_features, out_features, bias, fp4)


def collect_stats(model: nn.Module) -> dict[str, float | int]:
    """Mean NVFP4 quantization errors over the modules of ``model`` that recorded a forward.

    Returns ``{"fp4_error", "fp4_activation_error", "fp4_weight_error", "fp4_layers"}`` (``fp4_error`` averages
    the activation and weight errors), or ``{}`` when no module has NVFP4 statistics. Any module exposing an
    ``fp4_stats: FP4Stats`` attribute takes part, so functional users of ``linear_fn`` can report too.
    """
    recorded = [
        stats
        for module in model.modules()
        if isinstance(stats := getattr(module, "fp4_stats", None), FP4Stats) and stats.activation_error is not None
    ]
    if not recorded:
        return {}
    activation = sum(float(s.activation_error) for s in recorded) / len(recorded)
    weight = sum(float(s.weight_error) for s in recorded) / len(recorded)
    return {
        "fp4_error": (activation + weight) / 2,
        "fp4_activation_error": activation,
        "fp4_weight_error": weight,
        "fp4_layers": len(recorded),
    }
