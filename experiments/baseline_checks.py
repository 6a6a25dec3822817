"""Checks of a recipe patch against the current baselines, for the idea form (``FLIGHTDECK_IDEA_PATCH_WARNINGS``):
a patch whose every key already has its value, or sits in a part of the config that is off, in every current
baseline would be refused as an ablation of each of them, so the submitter hears it now."""
from __future__ import annotations

import json
from typing import Any

from experiments import configdiff, selectors
from experiments.composition import same_value
from modelzoo.config import ConfigError, apply_overrides, load_recipe
from modelzoo.config_effects import inactive_reason


def no_effect_reasons(patch: dict[str, Any], config: dict[str, Any]) -> list[str] | None:
    """Why ``patch`` changes nothing in the flat resolved ``config``, key by key; None when some key matters."""
    reasons = []
    for key, value in patch.items():
        if key in config and same_value(config[key], value):
            reasons.append(f"{key} = {json.dumps(value)} is already the baseline's value")
        elif why := inactive_reason(key, config):
            reasons.append(f"{key} has no effect: {why}")
        else:
            return None
    return reasons


def patch_warnings(patch: dict[str, Any]) -> list[str]:
    """One warning when ``patch`` changes nothing against every current baseline (naming each one and why);
    [] when it changes something in at least one, or when there are no baselines."""
    verdicts = []
    for baseline in selectors.baselines_latest():
        try:
            config = configdiff.flatten(apply_overrides(load_recipe(baseline.recipe), baseline.overrides).to_dict())
        except ConfigError:
            continue  # a baseline that no longer resolves judges nothing
        reasons = no_effect_reasons(patch, config)
        if reasons is None:
            return []
        verdicts.append(f"{baseline.label} ({'; '.join(reasons)})")
    if not verdicts:
        return []
    return ["This patch changes nothing against any current baseline, so an ablation of it would be refused: "
            + "; ".join(verdicts)]
