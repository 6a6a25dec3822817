"""Pre-norm residual block around one mixer (Mamba-2, attention, MLP or MoE), as Nemotron-H's block."""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.attention import Attention, KVCache
from modelzoo.backends import Kernels
from modelzoo.config import FP4Config, ModelConfig
from modelzoo.mamba2 import Mamba2Mixer, MambaState
from modelzoo.mlp import MLP
from modelzoo.moe import MoE
from modelzoo.norms import RMSNorm

LayerCache = MambaState | KVCache | None


def _mixer(cfg: ModelConfig, kind: str, fp4: FP4Config | None, kernels: Kernels) -> nn.Module:
    if kind == "mamba":
        return Mamba2Mixer(cfg, fp4, kernels)
    if kind == "attention":
        return Attention(cfg, fp4)
    if kind == "mlp":
        return MLP(cfg.hidden_size, cfg.mlp.intermediate_size, fp4)
    return MoE(cfg, fp4)


class Block(nn.Module):
    """``x + mixer(norm(x))``; ``forward`` also returns the MoE statistics (None for other mixers)."""

    def __init__(self, cfg: ModelConfig, kind: str, fp4: FP4Config | None, kernels: Kernels) -> None:
        super().__init__()
        self.kind = kind
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mixer = _mixer(cfg, kind, fp4, kernels)

    def forward(self, x: torch.Tensor, cache: LayerCache = None) -> tuple[torch.Tensor, dict | None]:
        h = self.norm(x)
        stats = None
        if self.kind in ("mamba", "attention"):
            out = self.mixer(h, cache)
        elif self.kind == "moe":
            out, stats = self.mixer(h)
        else:
            out = self.mixer(h)
        return x + out, stats

    def empty_cache(self, batch: int, device: torch.device) -> LayerCache:
        if self.kind == "mamba":
            return self.mixer.empty_state(batch, device)
        if self.kind == "attention":
            return KVCache()
        return None


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, caches: list[LayerCache] | None = None
) -> tuple[torch.Tensor, list[dict]]:
    """Apply ``blocks`` in order; returns the output and the MoE statistics of every MoE block."""
    moe_stats = []
    for index, block in enumerate(blocks):
        x, stats = block(x, None if caches is None else caches[index])
        if stats is not None:
            moe_stats.append(stats)
    return x, moe_stats
