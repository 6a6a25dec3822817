"""Consistency rules of the ``[moe]`` config section, free of torch so recipe validation stays light.

Shared by the MoE module (which may be built from a hand-made config) and by recipe validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelzoo.config import MoEConfig


def moe_config_errors(moe: MoEConfig, hidden_size: int) -> list[str]:
    """Every problem of ``moe`` for a model of width ``hidden_size``, each naming its key; [] when valid."""
    errors = [
        f"moe.{name}: must be > 0, got {value}"
        for name, value in (
            ("num_experts", moe.num_experts),
            ("top_k", moe.top_k),
            ("intermediate_size", moe.intermediate_size),
            ("routed_scaling_factor", moe.routed_scaling_factor),
            ("n_group", moe.n_group),
            ("topk_group", moe.topk_group),
        )
        if value <= 0
    ]
    errors += [
        f"moe.{name}: must be >= 0, got {value}"
        for name, value in (
            ("shared_intermediate_size", moe.shared_intermediate_size),
            ("latent_size", moe.latent_size),
            ("bias_update_rate", moe.bias_update_rate),
            ("aux_loss_coef", moe.aux_loss_coef),
        )
        if value < 0
    ]
    if errors:
        return errors  # the relations below would divide by zero or repeat the same cause

    if moe.top_k > moe.num_experts:
        errors.append(f"moe.top_k: {moe.top_k} exceeds moe.num_experts {moe.num_experts}")
    if moe.latent_size > hidden_size:
        errors.append(f"moe.latent_size: {moe.latent_size} exceeds hidden_size {hidden_size}")
    if moe.num_experts % moe.n_group:
        errors.append(f"moe.n_group: {moe.n_group} does not divide moe.num_experts {moe.num_experts}")
        return errors
    if moe.topk_group > moe.n_group:
        errors.append(f"moe.topk_group: {moe.topk_group} exceeds moe.n_group {moe.n_group}")
        return errors
    per_group = moe.num_experts // moe.n_group
    # A group is ranked by the sum of its two best expert scores (DeepSeek-V3 / transformers' NemotronH).
    if moe.n_group > 1 and per_group < 2:
        errors.append(
            f"moe.n_group: {moe.n_group} groups leave {per_group} expert per group; "
            "group routing ranks groups by their two best experts, so each group needs >= 2"
        )
    if moe.top_k > moe.topk_group * per_group:
        errors.append(
            f"moe.top_k: {moe.top_k} exceeds the {moe.topk_group * per_group} experts reachable through "
            f"moe.topk_group={moe.topk_group} groups of {per_group}"
        )
    return errors
