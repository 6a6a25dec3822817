"""Diff of two resolved trainer configs (``Recipe.to_dict()``) as dotted keys, spelled the way recipe
patches spell them: ``train.*``, ``optim.*``, ``data.*`` keep their section, model keys drop ``model.``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments.composition import same_value


def flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node

    for section, body in config.items():
        walk("" if section == "model" else section, body)
    return flat


def config_diff(config: Mapping[str, Any], reference: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, reference value, value)`` for every key whose value differs, sorted by key; a key only one
    side has shows ``None`` on the other."""
    ours, theirs = flatten(config), flatten(reference)
    return [
        (key, theirs.get(key), ours.get(key))
        for key in sorted(ours.keys() | theirs.keys())
        if key not in ours or key not in theirs or not same_value(ours[key], theirs[key])
    ]
