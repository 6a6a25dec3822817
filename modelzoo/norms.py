"""RMS normalisations as in Nemotron-H (statistics in at least float32, weight applied as the reference does)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def at_least_float32(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision inputs, the input dtype for float32/float64."""
    return torch.promote_types(dtype, torch.float32)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.to(at_least_float32(x.dtype))
        normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.to(wide.dtype) * normed).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """``RMSNorm(x * silu(z))`` computed separately over ``n_groups`` equal slices of the last dimension."""

    def __init__(self, size: int, n_groups: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.n_groups = n_groups
        self.eps = eps

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return gated_rms_norm(x, gate, self.weight, self.n_groups, self.eps)


def gated_rms_norm(
    x: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, n_groups: int, eps: float
) -> torch.Tensor:
    """``GatedRMSNorm`` as a function of its weight, for code that runs with parameters passed in."""
    wide = at_least_float32(x.dtype)
    gated = x.to(wide) * F.silu(gate.to(wide))
    grouped = gated.unflatten(-1, (n_groups, -1))
    normed = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + eps)
    # Nemotron-H casts back to the input dtype before applying the weight.
    return weight * normed.flatten(-2).to(x.dtype)
