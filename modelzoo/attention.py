"""Grouped-query causal self-attention without positional embedding (Nemotron-H), with a KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.config import FP4Config, ModelConfig
from modelzoo.fp4 import make_linear


@dataclass
class KVCache:
    """Keys and values seen so far, [b, kv_heads, t, head_dim]; None before the first token."""

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, fp4: FP4Config | None) -> None:
        super().__init__()
        a = cfg.attention
        self.num_heads, self.num_kv_heads, self.head_dim = a.num_heads, a.num_kv_heads, cfg.attention_head_dim
        self.q_proj = make_linear(cfg.hidden_size, a.num_heads * self.head_dim, False, fp4)
        self.k_proj = make_linear(cfg.hidden_size, a.num_kv_heads * self.head_dim, False, fp4)
        self.v_proj = make_linear(cfg.hidden_size, a.num_kv_heads * self.head_dim, False, fp4)
        self.o_proj = make_linear(a.num_heads * self.head_dim, cfg.hidden_size, False, fp4)

    def forward(self, hidden: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        batch, length, _ = hidden.shape
        q = self.q_proj(hidden).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if cache is not None and cache.keys is not None:
            k = torch.cat([cache.keys, k], dim=2)
            v = torch.cat([cache.values, v], dim=2)
        if cache is not None:
            cache.keys, cache.values = k, v
        mask = _causal_mask_args(length, k.shape[2], q.device)
        out = F.scaled_dot_product_attention(q, k, v, **mask, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim))


def _causal_mask_args(queries: int, keys: int, device: torch.device) -> dict:
    """SDPA's is_causal aligns the mask top-left, which is wrong once cached keys precede the queries."""
    if queries == keys:
        return {"is_causal": True}
    if queries == 1:
        return {}
    past = keys - queries
    allowed = torch.ones(queries, keys, dtype=torch.bool, device=device).tril(diagonal=past)
    return {"attn_mask": allowed}
