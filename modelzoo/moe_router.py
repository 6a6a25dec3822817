"""Sigmoid top-k router of the MoE layer, with aux-loss-free balancing bias and the optional balancing loss.

Numerics follow transformers' ``NemotronHTopkRouter`` (DeepSeek-V3 routing): float32 sigmoid scores; the
selection ranks ``scores + e_score_correction_bias`` inside the best ``topk_group`` of ``n_group`` groups; the
combine weights are the *unbiased* scores of the chosen experts, optionally normalised, times
``routed_scaling_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from modelzoo.config import MoEConfig


@dataclass
class Routing:
    scores: torch.Tensor  # [N, E] float32 sigmoid scores, differentiable
    weights: torch.Tensor  # [N, k] float32 combine weights of the chosen experts, differentiable
    experts: torch.Tensor  # [N, k] int64 chosen expert ids, distinct within a row


class TopkRouter(nn.Module):
    def __init__(self, hidden_size: int, moe: MoEConfig):
        super().__init__()
        self.top_k = moe.top_k
        self.n_group = moe.n_group
        self.topk_group = moe.topk_group
        self.norm_topk_prob = moe.norm_topk_prob
        self.routed_scaling_factor = moe.routed_scaling_factor
        self.bias_update_rate = moe.bias_update_rate
        # The router is a high-precision island: float32 weight even when the rest of the model is not.
        self.weight = nn.Parameter(torch.zeros(moe.num_experts, hidden_size, dtype=torch.float32))
        # A buffer, not a parameter: the optimiser must not touch it, but checkpoints must carry it.
        self.register_buffer("e_score_correction_bias", torch.zeros(moe.num_experts, dtype=torch.float32))

    def forward(self, hidden: torch.Tensor) -> Routing:
        """Route ``hidden`` [N, H]."""
        logits = F.linear(hidden.float(), self.weight.float())
        scores = logits.sigmoid()
        choice = scores.detach() + self.e_score_correction_bias
        if self.n_group > 1:
            choice = self._keep_best_groups(choice)
        experts = torch.topk(choice, k=self.top_k, dim=-1, sorted=False).indices
        weights = scores.gather(1, experts)
        if self.norm_topk_prob:
            # Same epsilon as transformers, so an imported model routes identically.
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return Routing(scores=scores, weights=weights * self.routed_scaling_factor, experts=experts)

    def _keep_best_groups(self, choice: torch.Tensor) -> torch.Tensor:
        """``choice`` with every expert outside each token's ``topk_group`` best groups set to -inf."""
        grouped = choice.view(choice.shape[0], self.n_group, -1)
        group_rank = grouped.topk(2, dim=-1).values.sum(dim=-1)
        best = torch.topk(group_rank, k=self.topk_group, dim=-1, sorted=False).indices
        keep = torch.zeros_like(group_rank, dtype=torch.bool).scatter_(1, best, True)
        return grouped.masked_fill(~keep.unsqueeze(-1), float("-inf")).view_as(choice)

    @torch.no_grad()
    def update_bias(self, expert_counts: torch.Tensor) -> None:
        """Aux-loss-free balancing (DeepSeek-V3): raise the selection bias of under-loaded experts, lower it
        for over-loaded ones, by a fixed step ``bias_update_rate``."""
        counts = expert_counts.to(self.e_score_correction_bias.dtype)
        if dist.is_available() and dist.is_initialized():
            # Every data-parallel rank must take the same step, driven by the global load, or the biases drift apart.
            dist.all_reduce(counts)
        self.e_score_correction_bias += self.bias_update_rate * torch.sign(counts.mean() - counts)


def load_balancing_loss(scores: torch.Tensor, experts: torch.Tensor, num_groups: int) -> torch.Tensor:
    """DeepSeek-V3's balancing loss ``sum_i f_i * P_i``, averaged over ``num_groups`` equal token groups.

    ``scores`` [N, E] and ``experts`` [N, k] are token-major; group g is rows ``g*N/num_groups ..``. One group
    per sequence gives the sequence-wise loss, one group in all the batch-wise loss. ``f_i`` is expert i's
    share of the group's assignments times E (1 when balanced); ``P_i`` its mean score after normalising each
    token's scores to sum to one. Equals 1 for perfectly balanced, uniform routing.
    """
    num_tokens, num_experts = scores.shape
    top_k = experts.shape[1]
    per_group = num_tokens // num_groups
    assigned = torch.zeros_like(scores).scatter_(1, experts, 1.0).view(num_groups, per_group, num_experts)
    load_share = assigned.sum(dim=1) * (num_experts / (top_k * per_group))
    probs = scores / scores.sum(dim=-1, keepdim=True)
    mean_prob = probs.view(num_groups, per_group, num_experts).mean(dim=1)
    return (load_share * mean_prob).sum(dim=-1).mean()
