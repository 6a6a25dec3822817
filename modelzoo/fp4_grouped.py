"""NVFP4-emulated grouped GEMM of the MoE experts, with static shapes.

The same recipe as ``fp4_linear`` applied to every expert as if its rows were a layer's input of their own:
each expert's activations, gradients and weight get their own tensor scale (``scale_groups`` of
``quantize``), and the weight-gradient operands are zero-padded to whole 16-token slices *per expert* before
the Hadamard transform and the 16x1 blocks. The padding goes into a buffer whose size depends only on the
number of rows and experts (``rows + 15 * experts``, rounded up to 16), so ``torch.compile`` sees no shape that
depends on the routing. ``Experts._fp4_experts_ref`` is the per-expert loop this is tested against.
"""

from __future__ import annotations

import torch

from modelzoo.config import FP4Config
from modelzoo.fp4_hadamard import RHT_SIZE, rotate_rows
from modelzoo.fp4_linear import _accumulation_dtype, _gradient_rounding, _relative_error
from modelzoo.fp4_quant import quantize_dequantize
from modelzoo.grouped_mm import grouped_linear, grouped_weight_grad


def _per_expert(weight: torch.Tensor) -> torch.Tensor:
    """Scale-group ids that give each expert matrix of ``weight`` [E, out, in] its own tensor scale."""
    return torch.arange(weight.shape[0], device=weight.device).view(-1, 1, 1, 1, 1)


def _padded_by_expert(
    tensors: tuple[torch.Tensor, ...], row_experts: torch.Tensor, offsets: torch.Tensor, experts: int
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """Copy the rows of ``tensors`` (sorted by expert) so that every expert's segment starts on a 16-row slice.

    Returns the padded tensors, the padded segment ends (int32, for the grouped GEMM) and the expert of every
    16-row slice (``experts`` for the unused slices at the end, which stay zero).
    """
    rows = row_experts.shape[0]
    ends = offsets.long()
    counts = ends - torch.cat([ends.new_zeros(1), ends[:-1]])
    padded_counts = (counts + RHT_SIZE - 1) // RHT_SIZE * RHT_SIZE
    padded_ends = padded_counts.cumsum(0)
    destination = (padded_ends - padded_counts - (ends - counts))[row_experts] + torch.arange(rows, device=ends.device)
    size = -(-(rows + (RHT_SIZE - 1) * experts) // RHT_SIZE) * RHT_SIZE
    padded = tuple(t.new_zeros(size, t.shape[1]).index_copy_(0, destination, t) for t in tensors)
    slice_starts = torch.arange(0, size, RHT_SIZE, device=ends.device)
    slice_experts = torch.searchsorted(padded_ends, slice_starts, right=True)
    return padded, padded_ends.to(torch.int32), slice_experts


def grouped_weight_gradient(
    dy: torch.Tensor, x: torch.Tensor, row_experts: torch.Tensor, offsets: torch.Tensor, experts: int, fp4: FP4Config
) -> torch.Tensor:
    """``dy_e^T x_e`` for every expert e as the NVFP4 wgrad GEMM computes it: [E, out, in]."""
    (dy, x), padded_offsets, slice_experts = _padded_by_expert((dy, x), row_experts, offsets, experts)
    if fp4.rht:
        dy, x = rotate_rows(dy), rotate_rows(x)
    groups = {"scale_groups": slice_experts.view(1, -1, 1, 1, 1), "num_scale_groups": experts + 1}
    dy = quantize_dequantize(dy, rounding=_gradient_rounding(fp4), axis=-2, overwrite=True, **groups)
    x = quantize_dequantize(x, axis=-2, overwrite=True, **groups)
    return grouped_weight_grad(dy, x, padded_offsets, experts)


class _NVFP4GroupedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, offsets, row_experts, fp4: FP4Config):  # type: ignore[override]
        """``x`` [rows, in] sorted by expert, ``weight`` [E, out, in]; returns the output and the relative errors
        of the quantized activation and weight."""
        dtype = _accumulation_dtype(x.dtype)
        x2, w = x.to(dtype), weight.to(dtype)
        experts = weight.shape[0]
        by_row = {"scale_groups": row_experts.view(1, -1, 1, 1, 1), "num_scale_groups": experts}
        by_expert = {"scale_groups": _per_expert(w), "num_scale_groups": experts}
        qx = quantize_dequantize(x2, **by_row)
        qw = quantize_dequantize(w, blocks="2d" if fp4.weight_2d_blocks else "1d", **by_expert)
        y = grouped_linear(qx, qw, offsets)
        errors = (_relative_error(qx, x2), _relative_error(qw, w))
        ctx.mark_non_differentiable(*errors)
        ctx.save_for_backward(x2, qw if fp4.weight_2d_blocks else w, offsets, row_experts)
        ctx.fp4 = fp4
        ctx.dtypes = (x.dtype, weight.dtype)
        return y.to(x.dtype), *errors

    @staticmethod
    def backward(ctx, dy, _activation_error, _weight_error):  # type: ignore[override]
        x2, w, offsets, row_experts = ctx.saved_tensors
        fp4: FP4Config = ctx.fp4
        x_dtype, w_dtype = ctx.dtypes
        experts = w.shape[0]
        dy2 = dy.to(x2.dtype)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            by_row = {"scale_groups": row_experts.view(1, -1, 1, 1, 1), "num_scale_groups": experts}
            q_dy = quantize_dequantize(dy2, rounding=_gradient_rounding(fp4), **by_row)
            by_expert = {"scale_groups": _per_expert(w), "num_scale_groups": experts}
            q_w = w if fp4.weight_2d_blocks else quantize_dequantize(w, axis=-2, **by_expert)
            dx = grouped_linear(q_dy, q_w.transpose(1, 2), offsets).to(x_dtype)
        if ctx.needs_input_grad[1]:
            dw = grouped_weight_gradient(dy2, x2, row_experts, offsets, experts, fp4).to(w_dtype)
        return dx, dw, None, None, None


def grouped_linear_fp4(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, row_experts: torch.Tensor, fp4: FP4Config
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NVFP4-emulated ``grouped_linear``; ``row_experts`` [rows] is the expert of each (sorted) row. Returns the
    output and the relative quantization errors of the activation and the weight (detached 0-d tensors)."""
    return _NVFP4GroupedLinear.apply(x, weight, offsets, row_experts, fp4)
