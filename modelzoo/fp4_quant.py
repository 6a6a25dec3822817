"""NVFP4 block quantization: E2M1 elements, one E4M3 scale per block, one float32 scale per tensor.

Following the NVFP4 pretraining recipe (arXiv 2509.25149): with ``amax`` the largest magnitude of the tensor,
the per-tensor encode scale is ``s_enc = 6 · 448 / amax``; each block stores the E4M3 scale
``e4m3(amax_block / 6 · s_enc)``; elements are ``x · s_enc / block_scale`` rounded onto E2M1; and decoding
multiplies back by ``block_scale / s_enc``. The per-tensor scale lifts the block scales into E4M3's range, so the
largest block gets scale 448 and small blocks keep precision down to E4M3's subnormals.

Blocks are 16 consecutive elements along one axis (``1x16`` for activations and gradients, along the GEMM
reduction dimension) or 16x16 tiles of the last two dimensions (weights: a tile's scale is the same whether the
matrix or its transpose is quantized, so forward and backward GEMMs see one quantized weight). Dimensions that
are not multiples of 16 are zero-padded for blocking and cropped afterwards; zero padding never raises a block's
amax. All arithmetic is float32, whatever the input dtype; the result is cast back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from modelzoo import fp4_kernels
from modelzoo.fp4_formats import E2M1, E4M3, noise_seed, random_bits, round_e2m1_, round_e4m3

BLOCK = 16
Blocks = Literal["1d", "2d"]
Rounding = Literal["nearest", "stochastic"]

_FLOAT32_MAX = torch.finfo(torch.float32).max


@dataclass(frozen=True)
class NVFP4Tensor:
    """A quantized tensor in blocked layout ``(batch, row_blocks, block_rows, col_blocks, block_cols)``.

    ``elements`` are E2M1 values (stored as float32), ``block_scales`` the E4M3 scales broadcastable against
    them, ``tensor_scale`` the float32 encode scale ``s_enc``; ``shape`` and ``dtype`` are those of the source.
    """

    elements: torch.Tensor
    block_scales: torch.Tensor
    tensor_scale: torch.Tensor
    shape: torch.Size
    dtype: torch.dtype

    def dequantize(self) -> torch.Tensor:
        return _decode_(self.elements.clone(), self)


def _decode_(elements: torch.Tensor, source: NVFP4Tensor) -> torch.Tensor:
    """``elements · block_scale / s_enc`` computed in place in ``elements``, cropped to the source's shape."""
    padded = elements.mul_(source.block_scales / source.tensor_scale).flatten(3).flatten(1, 2)
    rows, cols = _matrix_dims(source.shape)
    if padded.shape[1:] != (rows, cols):
        padded = padded[:, :rows, :cols]
    return padded.reshape(source.shape).to(source.dtype)


def _matrix_dims(shape: torch.Size) -> tuple[int, int]:
    """(rows, columns) of ``shape`` read as a batch of matrices; a vector is one row."""
    if len(shape) == 0:
        raise ValueError("fake_quantize: x must have at least one dimension, got a 0-d tensor")
    return (shape[-2] if len(shape) >= 2 else 1), shape[-1]


def _block_shape(blocks: Blocks, axis: int) -> tuple[int, int]:
    if blocks == "2d":
        return BLOCK, BLOCK
    if blocks != "1d":
        raise ValueError(f"fake_quantize: blocks must be '1d' or '2d', got {blocks!r}")
    if axis == -1:
        return 1, BLOCK
    if axis == -2:
        return BLOCK, 1
    raise ValueError(f"fake_quantize: 1-D blocks run along axis -1 or -2, got axis={axis}")


def _to_blocked(x: torch.Tensor, block_rows: int, block_cols: int) -> tuple[torch.Tensor, bool]:
    """float32 ``(batch, rows/br, br, cols/bc, bc)`` view of ``x`` (last two dims as the matrix), zero-padded.

    Also says whether the result is a private copy (padding or a dtype change made one) rather than ``x`` itself.
    """
    rows, cols = _matrix_dims(x.shape)
    matrix = x.reshape(x.shape[:-2].numel(), rows, cols)
    pad_rows, pad_cols = -rows % block_rows, -cols % block_cols
    private = True
    if pad_rows or pad_cols:
        matrix = F.pad(matrix.to(torch.float32), (0, pad_cols, 0, pad_rows))
    elif matrix.dtype != torch.float32 or not matrix.is_contiguous():
        # Not ``.to(memory_format=...)``: for a sliced float32 tensor that returns the tensor itself.
        matrix = matrix.to(torch.float32).contiguous() if matrix.dtype != torch.float32 else matrix.contiguous()
    else:
        private = False
    return matrix.unflatten(2, (-1, block_cols)).unflatten(1, (-1, block_rows)), private


def _block_amax(magnitudes: torch.Tensor) -> torch.Tensor:
    """Largest magnitude per block, shaped ``(batch, row_blocks, 1, col_blocks, 1)``."""
    batch, row_blocks, block_rows, col_blocks, block_cols = magnitudes.shape
    if block_rows == 1 and magnitudes.numel():
        # A reduction over 16 contiguous elements is several times slower than this pooling kernel on CPU.
        rows = magnitudes.reshape(1, batch * row_blocks, col_blocks * block_cols)
        return F.max_pool1d(rows, block_cols).reshape(batch, row_blocks, 1, col_blocks, 1)
    return magnitudes.amax(dim=(2, 4), keepdim=True)


def _scales(
    block_amax: torch.Tensor, scale_groups: torch.Tensor | None, num_scale_groups: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tensor scale(s) ``s_enc``, the E4M3 block scales and each block's encode factor from the block maxima."""
    if scale_groups is not None:
        ids = scale_groups.expand_as(block_amax).flatten()
        group_amax = block_amax.new_zeros(num_scale_groups).scatter_reduce_(0, ids, block_amax.flatten(), "amax")
        tensor_amax = group_amax[scale_groups]
    else:
        tensor_amax = block_amax.amax() if block_amax.numel() else block_amax.new_zeros(())
    # Clamping keeps an all-zero tensor finite: its block scales round to 0 and it decodes to exact zeros.
    tensor_scale = (E2M1.max_value * E4M3.max_value / tensor_amax).clamp(max=_FLOAT32_MAX)
    block_scales = round_e4m3(block_amax * (tensor_scale / E2M1.max_value))
    # Blocks whose scale rounds to 0 (and, in absurdly tiny tensors, blocks whose encode scale overflows) flush to 0.
    encode = (tensor_scale / block_scales).nan_to_num_(posinf=0.0)
    return tensor_scale, block_scales, encode


@torch.no_grad()
def quantize(
    x: torch.Tensor,
    *,
    blocks: Blocks = "1d",
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
    axis: int = -1,
    overwrite: bool = False,
    scale_groups: torch.Tensor | None = None,
    num_scale_groups: int = 0,
) -> NVFP4Tensor:
    """Quantize ``x`` to NVFP4; 1-D blocks run along ``axis`` (-1 or -2), 2-D blocks tile the last two dims.

    ``overwrite=True`` lets the elements reuse ``x``'s storage when ``x`` is float32 and contiguous, for callers
    that no longer need ``x``. ``scale_groups`` (int64 ids in ``[0, num_scale_groups)``, broadcastable against
    the blocked layout ``(batch, row_blocks, 1, col_blocks, 1)``) splits the tensor into parts that each get
    their own tensor scale, as if each part were quantized on its own (the experts of a grouped GEMM).
    """
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"fake_quantize: rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    if not x.is_floating_point():
        raise TypeError(f"fake_quantize: x must be a floating-point tensor, got {x.dtype}")
    blocked, private = _to_blocked(x, *_block_shape(blocks, axis))
    magnitudes = blocked.abs()
    tensor_scale, block_scales, encode = _scales(_block_amax(magnitudes), scale_groups, num_scale_groups)
    # Scaling is the first pass that writes the elements: in place only where the storage is ours to reuse.
    elements = blocked.mul_(encode) if private or overwrite else blocked * encode
    magnitudes.mul_(encode)
    noise = random_bits(elements.shape, elements.device, generator) if rounding == "stochastic" else None
    round_e2m1_(elements, magnitudes, noise)
    return NVFP4Tensor(elements, block_scales, tensor_scale, x.shape, x.dtype)


def fake_quantize(
    x: torch.Tensor,
    *,
    blocks: Blocks = "1d",
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """NVFP4-quantize then dequantize ``x``: same shape and dtype, not differentiable.

    ``blocks="1d"``: 16-element blocks along the last dimension; ``"2d"``: 16x16 tiles of the last two
    dimensions. ``rounding="stochastic"`` draws from ``generator`` (the global RNG when None), so restoring the
    RNG state reproduces a run bit for bit.
    """
    return quantize_dequantize(x, blocks=blocks, rounding=rounding, generator=generator)


def quantize_dequantize(
    x: torch.Tensor,
    *,
    blocks: Blocks = "1d",
    rounding: Rounding = "nearest",
    generator: torch.Generator | None = None,
    axis: int = -1,
    overwrite: bool = False,
    scale_groups: torch.Tensor | None = None,
    num_scale_groups: int = 0,
) -> torch.Tensor:
    """``fake_quantize`` with the extra controls of ``quantize`` (block axis, reuse of ``x``'s storage, groups
    with their own tensor scale). On CPU the fused kernels of ``fp4_kernels`` compute it, bit for bit the same."""
    if fp4_kernels.usable_for(x) and x.is_floating_point() and rounding in ("nearest", "stochastic"):
        return _fused_round_trip(x, blocks, rounding, generator, axis, scale_groups, num_scale_groups)
    quantized = quantize(
        x, blocks=blocks, rounding=rounding, generator=generator, axis=axis, overwrite=overwrite,
        scale_groups=scale_groups, num_scale_groups=num_scale_groups,
    )
    return _decode_(quantized.elements, quantized)  # nothing else holds the elements, so decode them in place


@torch.no_grad()
def _fused_round_trip(
    x: torch.Tensor,
    blocks: Blocks,
    rounding: Rounding,
    generator: torch.Generator | None,
    axis: int,
    scale_groups: torch.Tensor | None,
    num_scale_groups: int,
) -> torch.Tensor:
    """``quantize`` then ``_decode_`` by the fused kernel, which reads ``x`` in place of a padded blocked copy."""
    block_rows, block_cols = _block_shape(blocks, axis)
    rows, cols = _matrix_dims(x.shape)
    matrices = x.reshape(x.shape[:-2].numel(), rows, cols).to(torch.float32).contiguous()
    row_blocks, col_blocks = -(-rows // block_rows), -(-cols // block_cols)
    batch = matrices.shape[0]
    groups = None
    if scale_groups is not None:
        groups = scale_groups.expand(batch, row_blocks, 1, col_blocks, 1).reshape(batch, row_blocks, col_blocks)
        groups = groups.contiguous()
    # The kernel hashes the seed as random_bits does, indexing the reference's padded blocked layout.
    seed = noise_seed(x.device, generator) if rounding == "stochastic" else None
    out = fp4_kernels.round_trip(matrices, block_rows, block_cols, groups, num_scale_groups, seed)
    return out.reshape(x.shape).to(x.dtype)
