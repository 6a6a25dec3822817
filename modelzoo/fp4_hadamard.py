"""The 16x16 random Hadamard transform (RHT) that NVFP4 applies to both inputs of the weight-gradient GEMM.

Gradients have outliers that a 16-element block scale cannot absorb; rotating each 16-element slice of the
reduction dimension with an orthogonal matrix spreads them out (arXiv 2509.25149, section 4.2). Because both GEMM
operands get the same orthogonal block-diagonal transform ``M``, ``(M a)^T (M b) = a^T b``: the transform changes
only the quantization error, never the exact product. ``M = H diag(s)`` with ``H`` the normalised Sylvester
Hadamard matrix and ``s`` one random sign vector drawn once from a fixed seed, as the paper shares one across
all layers.
"""

from __future__ import annotations

import torch

from modelzoo import fp4_kernels

RHT_SIZE = 16
RHT_SEED = 0x5EED


def hadamard_matrix(size: int) -> torch.Tensor:
    """Orthonormal Sylvester Hadamard matrix (float64) of a power-of-two ``size``."""
    if size < 1 or size & (size - 1):
        raise ValueError(f"hadamard_matrix: size must be a power of two, got {size}")
    matrix = torch.ones(1, 1, dtype=torch.float64)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix / size**0.5


def _random_signs() -> torch.Tensor:
    generator = torch.Generator().manual_seed(RHT_SEED)
    return torch.randint(0, 2, (RHT_SIZE,), generator=generator, dtype=torch.float64).mul_(2).sub_(1)


# Drawn once at import: a generator built inside traced code would break torch.compile's graph.
_SIGNS = _random_signs()
_SIGNS_FLOAT32 = _SIGNS.to(torch.float32)
_RANDOM_HADAMARD = hadamard_matrix(RHT_SIZE) * _SIGNS


def random_hadamard(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The fixed 16x16 random Hadamard matrix ``H diag(s)`` used by every layer, on ``device`` in ``dtype``."""
    return _RANDOM_HADAMARD.to(device=device, dtype=dtype)


def rotate_rows(x: torch.Tensor) -> torch.Tensor:
    """Apply the random Hadamard transform to every 16-row slice of the 2-D ``x`` (rows: a multiple of 16).

    Rows are the GEMM reduction dimension here (tokens, in the weight-gradient GEMM). float32 CPU tensors take
    the fused fast Walsh-Hadamard kernel (``fp4_kernels``), others a batch of 16x16 matrix products.
    """
    rows, cols = x.shape
    if rows % RHT_SIZE:
        raise ValueError(f"rotate_rows: the row count must be a multiple of {RHT_SIZE}, got {rows}")
    if x.dtype == torch.float32 and fp4_kernels.usable_for(x):
        return fp4_kernels.rotate_rows(x.contiguous(), _SIGNS_FLOAT32)
    matrix = random_hadamard(x.device, x.dtype)
    return torch.matmul(matrix, x.reshape(rows // RHT_SIZE, RHT_SIZE, cols)).reshape(rows, cols)
