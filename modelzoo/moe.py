"""Mixture-of-experts layer (Nemotron-H / Nemotron 3 style): sigmoid top-k router, squared-ReLU experts,
optional shared expert and optional latent width for the routed experts.

Parameter and buffer names mirror transformers' ``NemotronHMoE`` so export is a rename:
``gate.weight`` [E, H], ``gate.e_score_correction_bias`` [E], ``experts.up_proj`` [E, I, W],
``experts.down_proj`` [E, W, I] (W = latent_size or hidden_size), ``shared_experts.{up,down}_proj.weight``,
``fc1_latent_proj.weight`` [L, H], ``fc2_latent_proj.weight`` [H, L].
"""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.config import ConfigError, FP4Config, ModelConfig
from modelzoo.fp4 import FP4Stats, linear_fn, make_linear
from modelzoo.fp4_grouped import grouped_linear_fp4
from modelzoo.grouped_mm import grouped_linear
from modelzoo.mlp import MLP
from modelzoo.moe_checks import moe_config_errors
from modelzoo.moe_router import TopkRouter, load_balancing_loss


class Experts(nn.Module):
    """Routed experts as stacked weights, run dropless: every (token, expert) assignment is computed."""

    def __init__(self, num_experts: int, width: int, intermediate_size: int, fp4: FP4Config | None):
        super().__init__()
        self.fp4 = fp4
        self.fp4_stats = FP4Stats()  # found by modelzoo.fp4.collect_stats; holds the latest expert GEMM's error
        self.up_proj = nn.Parameter(torch.empty(num_experts, intermediate_size, width))
        self.down_proj = nn.Parameter(torch.empty(num_experts, width, intermediate_size))

    def forward(
        self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor, counts: torch.Tensor
    ) -> torch.Tensor:
        """``sum_j weights[n, j] * expert_{experts[n, j]}(x[n])`` for every token n of ``x`` [N, W].

        Assignments are sorted by expert so each expert's rows are one contiguous segment; ``counts`` [E] holds
        the number of assignments of each expert. Shapes depend on N and k only, never on the routing.
        Accumulates in float32 like transformers.
        """
        num_tokens, top_k = experts.shape
        sorted_experts, order = experts.flatten().sort(stable=True)  # assignment slots grouped by expert
        token_of_row = order // top_k
        rows = x.index_select(0, token_of_row)
        offsets = counts.cumsum(0).to(torch.int32)
        if self.fp4 is not None and self.fp4.enabled:
            hidden = grouped_linear_fp4(rows, self.up_proj, offsets, sorted_experts, self.fp4)[0]
            outputs, *errors = grouped_linear_fp4(
                torch.relu(hidden).square(), self.down_proj, offsets, sorted_experts, self.fp4
            )
            self.fp4_stats.activation_error, self.fp4_stats.weight_error = errors  # of the latest GEMM, as linear_fn
        else:
            hidden = torch.relu(grouped_linear(rows, self.up_proj.to(rows.dtype), offsets)).square()
            outputs = grouped_linear(hidden, self.down_proj.to(rows.dtype), offsets)
        weighted = outputs * weights.flatten()[order].unsqueeze(-1)
        combined = torch.zeros(num_tokens, x.shape[-1], dtype=weighted.dtype, device=x.device)
        return combined.index_add_(0, token_of_row, weighted).to(x.dtype)

    def _fp4_experts_ref(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """Nemotron-H's ungated squared-ReLU MLP ``down(relu(up(rows))**2)`` per expert segment through
        ``linear_fn``, NVFP4-emulated: the reference for the grouped NVFP4 path (each expert's GEMMs quantize
        their own operands, with their own tensor scales)."""
        # unbind once: indexing up_proj[e] per expert would make backward build E full-size zero gradients.
        ups, downs = self.up_proj.unbind(0), self.down_proj.unbind(0)
        outputs = []
        for expert, segment in enumerate(rows.split(counts)):
            if counts[expert]:
                hidden = torch.relu(linear_fn(segment, ups[expert], self.fp4, stats=self.fp4_stats)).square()
                outputs.append(linear_fn(hidden, downs[expert], self.fp4, stats=self.fp4_stats))
        return torch.cat(outputs)


class MoE(nn.Module):
    """``forward(x [B, T, H]) -> (y [B, T, H], stats)``; stats: ``aux_loss`` (sequence-wise balancing loss times
    ``aux_loss_coef``, scalar tensor), ``expert_load`` ([E] share of assignments per expert), ``imbalance``
    (max/mean load, 0-d tensor: statistics stay on the device until the model reads them). All GEMMs but the router's go through ``modelzoo.fp4`` (NVFP4 when ``fp4`` is on)."""

    def __init__(self, cfg: ModelConfig, fp4: FP4Config | None):
        super().__init__()
        moe = cfg.moe
        errors = moe_config_errors(moe, cfg.hidden_size)
        if errors:
            raise ConfigError("; ".join(errors))
        self.num_experts = moe.num_experts
        self.aux_loss_coef = moe.aux_loss_coef
        self.gate = TopkRouter(cfg.hidden_size, moe)
        self.experts = Experts(moe.num_experts, moe.latent_size or cfg.hidden_size, moe.intermediate_size, fp4)
        self.fc1_latent_proj = self.fc2_latent_proj = self.shared_experts = None
        if moe.latent_size:
            self.fc1_latent_proj = make_linear(cfg.hidden_size, moe.latent_size, False, fp4)
            self.fc2_latent_proj = make_linear(moe.latent_size, cfg.hidden_size, False, fp4)
        if moe.shared_intermediate_size:
            self.shared_experts = MLP(cfg.hidden_size, moe.shared_intermediate_size, fp4)
        # transformers' NemotronH initialisation; the layer has no biases and the correction bias starts at zero.
        for weight in self.parameters():
            nn.init.normal_(weight, std=cfg.initializer_range)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        batch, _, hidden_size = x.shape
        tokens = x.reshape(-1, hidden_size)
        # The router reads the full-width hidden state, before any latent projection (as transformers does).
        routing = self.gate(tokens)
        flat_experts = routing.experts.flatten()
        # Counted on the device (no bincount, whose output size depends on the data and syncs with the host).
        expert_counts = torch.zeros(self.num_experts, dtype=torch.long, device=x.device)
        expert_counts.scatter_add_(0, flat_experts, torch.ones_like(flat_experts))
        if self.training and self.gate.bias_update_rate > 0:
            # Once per training forward; activation checkpointing that re-runs this forward would step it twice.
            self.gate.update_bias(expert_counts)

        expert_in = tokens
        if self.fc1_latent_proj is not None:
            expert_in = self.fc1_latent_proj(tokens)
        routed = self.experts(expert_in, routing.experts, routing.weights, expert_counts)
        if self.fc2_latent_proj is not None:
            routed = self.fc2_latent_proj(routed)
        y = routed.view_as(x)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y, self._stats(routing.scores, routing.experts, expert_counts, batch)

    def _stats(self, scores: torch.Tensor, experts: torch.Tensor, expert_counts: torch.Tensor, batch: int) -> dict:
        if self.aux_loss_coef > 0:
            aux_loss = self.aux_loss_coef * load_balancing_loss(scores, experts, num_groups=batch)
        else:
            aux_loss = torch.zeros((), device=scores.device)
        return {
            "aux_loss": aux_loss,
            "expert_load": expert_counts.float() / experts.numel(),
            "imbalance": expert_counts.max().float() * (self.num_experts / experts.numel()),
        }
