"""Independent float64 reference for NVFP4: formats from their bit definitions, quantization block by block.

Written with plain Python loops and nearest-value searches so that it shares no arithmetic tricks with
``modelzoo.fp4_*`` (no magic-number rounding, no float8 casts).
"""

from __future__ import annotations

import math

import torch


def e4m3_values() -> list[float]:
    """Every finite non-negative E4M3 (fn variant) value: 4 exponent bits (bias 7), 3 mantissa bits."""
    values = []
    for exponent in range(16):
        for mantissa in range(8):
            if exponent == 15 and mantissa == 7:  # the NaN encoding; 448 is the largest finite value
                continue
            if exponent == 0:
                values.append(mantissa / 8 * 2.0**-6)
            else:
                values.append((1 + mantissa / 8) * 2.0 ** (exponent - 7))
    return values


E4M3 = e4m3_values()
E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def round_to_grid(value: float, grid: list[float]) -> float:
    """Nearest grid value to ``value >= 0``, ties to the even-indexed (even mantissa) one, saturating at the top."""
    if value >= grid[-1]:
        return grid[-1]
    upper = next(i for i, g in enumerate(grid) if g >= value)
    if grid[upper] == value or upper == 0:
        return grid[upper]
    below, above = value - grid[upper - 1], grid[upper] - value
    if below == above:
        return grid[upper] if upper % 2 == 0 else grid[upper - 1]
    return grid[upper] if above < below else grid[upper - 1]


def quantize_blocks(
    x: torch.Tensor, block_rows: int, block_cols: int, tensor_amax: float | None = None
) -> torch.Tensor:
    """NVFP4 round-to-nearest fake quantization of a 2-D tensor with ``block_rows x block_cols`` blocks.

    ``tensor_amax`` overrides the tensor's own amax, for a matrix that is one slice of a larger tensor.
    """
    data = x.double().tolist()
    rows, cols = len(data), len(data[0])
    if tensor_amax is None:
        tensor_amax = max((abs(v) for row in data for v in row), default=0.0)
    out = [[0.0] * cols for _ in range(rows)]
    if tensor_amax == 0:
        return torch.tensor(out, dtype=torch.float64)
    tensor_scale = 6 * 448 / tensor_amax
    for r0 in range(0, rows, block_rows):
        for c0 in range(0, cols, block_cols):
            block_r = range(r0, min(r0 + block_rows, rows))
            cells = [(r, c) for r in block_r for c in range(c0, min(c0 + block_cols, cols))]
            block_amax = max(abs(data[r][c]) for r, c in cells)
            scale = round_to_grid(block_amax / 6 * tensor_scale, E4M3)
            if scale == 0:
                continue
            for r, c in cells:
                element = round_to_grid(abs(data[r][c]) * tensor_scale / scale, E2M1)
                out[r][c] = math.copysign(element, data[r][c]) * scale / tensor_scale
    return torch.tensor(out, dtype=torch.float64)
