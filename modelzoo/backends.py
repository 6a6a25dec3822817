"""Choice of compute kernels: plain PyTorch everywhere, or the fused CUDA kernels of mamba_ssm/causal_conv1d."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


class BackendError(RuntimeError):
    """The requested backend cannot run here."""


@dataclass(frozen=True)
class Kernels:
    """The resolved backend: ``name`` is "torch" or "cuda"; the callables are set only for "cuda"."""

    name: str
    chunk_scan: Callable | None = None  # mamba_ssm.ops.triton.ssd_combined.mamba_chunk_scan_combined
    causal_conv1d: Callable | None = None  # causal_conv1d.causal_conv1d_fn


def _cuda_kernels() -> Kernels:
    """Import the fused kernels, raising BackendError that says what is missing."""
    if not torch.cuda.is_available():
        raise BackendError("backend 'cuda' needs a CUDA device, but torch.cuda.is_available() is False")
    try:
        from causal_conv1d import causal_conv1d_fn
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError as error:
        raise BackendError(
            f"backend 'cuda' needs the packages mamba_ssm and causal_conv1d ({error}); "
            "install them or set backend = 'torch'"
        ) from None
    return Kernels("cuda", chunk_scan=mamba_chunk_scan_combined, causal_conv1d=causal_conv1d_fn)


def resolve_kernels(requested: str) -> Kernels:
    """Kernels for ``backend`` = "torch", "cuda" (error if unavailable) or "auto" (cuda when possible)."""
    if requested == "torch":
        return Kernels("torch")
    if requested == "cuda":
        return _cuda_kernels()
    if requested == "auto":
        try:
            return _cuda_kernels()
        except BackendError:
            return Kernels("torch")
    raise BackendError(f"backend: unknown value {requested!r}; allowed: auto, torch, cuda")
