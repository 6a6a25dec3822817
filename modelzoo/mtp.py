"""Multi-token prediction (DeepSeek-V3 / Megatron style).

Depth k (1..D) combines ``RMSNorm(h_{k-1, t})`` with ``RMSNorm(embedding(token_{t+k}))`` through a 2H -> H
projection, runs its own small layer pattern (``mtp.pattern``) and predicts token ``t+1+k`` through the
main model's head. h_0 is the main model's last hidden state before its final norm. The depth-k stream is
k positions shorter than the input, because token_{t+k} must exist. MTP layers always run in high precision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.backends import Kernels
from modelzoo.blocks import Block, run_blocks
from modelzoo.config import ModelConfig, parse_pattern
from modelzoo.norms import RMSNorm

IGNORE_INDEX = -100


class MTPDepth(nn.Module):
    def __init__(self, cfg: ModelConfig, kernels: Kernels) -> None:
        super().__init__()
        self.hnorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.enorm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.eh_proj = nn.Linear(2 * cfg.hidden_size, cfg.hidden_size, bias=False)
        self.layers = nn.ModuleList(Block(cfg, kind, None, kernels) for kind in parse_pattern(cfg.mtp.pattern))
        self.final_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def forward(self, previous: torch.Tensor, token_embeddings: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
        """``previous`` and ``token_embeddings`` [b, t, H] -> (this depth's hidden state [b, t, H], MoE stats)."""
        combined = torch.cat([self.hnorm(previous), self.enorm(token_embeddings)], dim=-1)
        return run_blocks(self.layers, self.eh_proj(combined))


class MultiTokenPrediction(nn.Module):
    def __init__(self, cfg: ModelConfig, kernels: Kernels) -> None:
        super().__init__()
        self.depths = nn.ModuleList(MTPDepth(cfg, kernels) for _ in range(cfg.mtp.depth))

    def losses(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        embed: nn.Embedding,
        head: Callable[[torch.Tensor], torch.Tensor],
    ) -> tuple[list[torch.Tensor], list[dict]]:
        """Cross-entropy of every depth (labels aligned with input_ids, -100 ignored) and MoE statistics."""
        losses, moe_stats = [], []
        length = input_ids.shape[1]
        for k, depth in enumerate(self.depths, start=1):
            if length - k - 1 <= 0:
                break  # sequence too short for a target this far ahead
            hidden, stats = depth(hidden[:, : length - k], embed(input_ids[:, k:]))
            moe_stats += stats
            logits = head(depth.final_norm(hidden[:, : length - k - 1]))
            losses.append(cross_entropy(logits, labels[:, k + 1 :]))
        return losses, moe_stats


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)
