"""Grouped matmul of the MoE experts: rows sorted by expert, one weight per expert, shapes static.

``grouped_linear(x, weight, offsets)`` computes ``x[s_e:s_{e+1}] @ weight[e]^T`` for every expert e, where
``offsets`` holds the cumulative row counts ``s_{e+1}``. Its output has a fixed shape ``[rows, out]`` whatever
the routing, so ``torch.compile`` sees no data-dependent shapes: it is a ``torch.library`` custom op (opaque to
the compiler) with a fake implementation and a backward. Inside, ``torch._grouped_mm`` runs where it can (float32
or half precision with 16-byte-aligned strides); otherwise a loop over the experts' row segments.
"""

from __future__ import annotations

import torch

_GROUPED_MM_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _can_use_grouped_mm(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not hasattr(torch, "_grouped_mm") or a.device.type != "cpu" or a.dtype not in _GROUPED_MM_DTYPES:
        return False
    if b.dtype != a.dtype:
        return False
    aligned = 16 // a.element_size()
    return all(stride % aligned == 0 or size == 1 for t in (a, b) for stride, size in zip(t.stride(), t.shape)
               if stride != 1)


def _segments(offsets: torch.Tensor) -> list[tuple[int, int]]:
    ends = offsets.tolist()
    return list(zip([0, *ends[:-1]], ends))


@torch.library.custom_op("modelzoo::grouped_linear", mutates_args=())
def grouped_linear(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``x`` [rows, in] sorted by group, ``weight`` [groups, out, in], ``offsets`` [groups] int32 -> [rows, out]."""
    weight_t = weight.transpose(1, 2)
    if _can_use_grouped_mm(x, weight_t):
        return torch._grouped_mm(x, weight_t, offs=offsets)
    out = x.new_empty(x.shape[0], weight.shape[1])
    for group, (start, end) in enumerate(_segments(offsets)):
        torch.mm(x[start:end], weight_t[group], out=out[start:end])
    return out


@grouped_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[1])


@torch.library.custom_op("modelzoo::grouped_weight_grad", mutates_args=())
def grouped_weight_grad(grad: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, groups: int) -> torch.Tensor:
    """``grad[s_e:s_{e+1}]^T @ x[s_e:s_{e+1}]`` per group: [groups, out, in] (zeros for a group without rows)."""
    grad_t = grad.t()
    if _can_use_grouped_mm(grad_t, x):
        return torch._grouped_mm(grad_t, x, offs=offsets)
    out = x.new_zeros(groups, grad.shape[1], x.shape[1])
    for group, (start, end) in enumerate(_segments(offsets)):
        torch.mm(grad_t[:, start:end], x[start:end], out=out[group])
    return out


@grouped_weight_grad.register_fake
def _(grad: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, groups: int) -> torch.Tensor:
    return x.new_empty(groups, grad.shape[1], x.shape[1])


def _setup_context(ctx, inputs, output) -> None:
    x, weight, offsets = inputs
    ctx.save_for_backward(x, weight, offsets)


def _backward(ctx, grad: torch.Tensor):
    x, weight, offsets = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x = grouped_linear(grad, weight.transpose(1, 2), offsets) if ctx.needs_input_grad[0] else None
    grad_weight = grouped_weight_grad(grad, x, offsets, weight.shape[0]) if ctx.needs_input_grad[1] else None
    return grad_x, grad_weight, None


grouped_linear.register_autograd(_backward, setup_context=_setup_context)
