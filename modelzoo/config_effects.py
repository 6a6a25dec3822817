"""Which parts of a resolved config have no effect: a section whose switch is off (``fp4.enabled = false``),
a block type the layer pattern does not use. Keys inside such a part may hold any value without changing
training, which is how a recipe patch can look like a change and be none (``fp4.stochastic_rounding`` while
FP4 is off), and why a chart of that part's metric stays empty.

Works on the flattened config spelled the way patches spell keys (``fp4.enabled``, ``pattern``,
``data.tokenizer``), so callers need no Recipe object.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Section → the layer letter that uses it (Nemotron-H convention).
_BLOCK_LETTERS = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}
_BLOCK_NAMES = {"mamba": "Mamba-2 (M)", "attention": "attention (*)", "mlp": "MLP (-)", "moe": "MoE (E)"}
# Keys that stay effective although their section is off: the switch itself.
_SWITCHES = {"fp4.enabled", "mtp.depth"}


def inactive_sections(config: Mapping[str, Any]) -> dict[str, str]:
    """``{section prefix: why it has no effect}`` for ``config`` (flat, patch spelling)."""
    inactive: dict[str, str] = {}
    if config.get("fp4.enabled") is False:
        inactive["fp4"] = "FP4 is off in this config (fp4.enabled = false)"
    if config.get("mtp.depth") == 0:
        inactive["mtp"] = "multi-token prediction is off in this config (mtp.depth = 0)"
    pattern = config.get("pattern")
    if isinstance(pattern, str):
        # The multi-token-prediction block has its own pattern, built from the same sections.
        mtp_pattern = config.get("mtp.pattern") if config.get("mtp.depth") else ""
        used = pattern + (mtp_pattern if isinstance(mtp_pattern, str) else "")
        where = f"the layer pattern {pattern!r}" + (f" and the MTP pattern {mtp_pattern!r}" if mtp_pattern else "")
        for section, letter in _BLOCK_LETTERS.items():
            if letter not in used:
                inactive[section] = f"{where} has no {_BLOCK_NAMES[section]} layer"
    if config.get("data.tokenizer") not in (None, "bpe"):
        inactive["data.bpe_vocab_size"] = f"the tokenizer is {config.get('data.tokenizer')!r}, not 'bpe'"
    return inactive


def inactive_reason(key: str, config: Mapping[str, Any]) -> str:
    """Why setting ``key`` in ``config`` changes nothing, or "" when it may matter."""
    if key in _SWITCHES:
        return ""
    for prefix, reason in inactive_sections(config).items():
        if key == prefix or key.startswith(prefix + "."):
            return reason
    return ""
