"""Recipe patches: the one validator the idea form, the API and the study composer share."""
from typing import Any

_SCALARS = (str, int, float, bool)
# Keys an idea may not set, with the reason. A study gives every arm the same seeds so that arms differ only
# by their patches; launching refuses an idea that sets one, so it is refused when the idea is submitted.
IDEA_REFUSED_KEYS = {
    "train.seed": "train.seed: an idea may not set the seed; each study runs every arm with the same seeds "
                  "(choose them when launching)",
}


def _shape_errors(patch: dict) -> dict[str, str]:
    """Entries that are not `dotted.key: JSON scalar, list or flat object`, keyed by the offending key."""
    errors = {}
    for key, value in patch.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            errors[key] = f"{key!r}: keys must be dotted config paths such as 'moe.latent_size'"
        elif key in IDEA_REFUSED_KEYS:
            errors[key] = IDEA_REFUSED_KEYS[key]
        elif not (isinstance(value, _SCALARS) or _is_flat_collection(value)):
            errors[key] = (f"{key}: value must be a JSON scalar, a list of scalars or an object of scalars "
                           f"(e.g. data.blend), got {type(value).__name__}")
    return errors


def _is_flat_collection(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return items is not None and all(isinstance(item, _SCALARS) for item in items)


def validate_recipe_patch(patch: Any) -> list[str]:
    """Every problem with ``patch`` (a mapping of dotted modelzoo config keys to JSON values); [] if valid.

    Shape is checked here; keys, types and cross-field rules come from modelzoo's own schema, so the
    trainer's ``--set`` flag and the idea form give the same message for the same key.
    """
    if not isinstance(patch, dict):
        return [f"recipe patch must be an object of dotted config key -> value, got {type(patch).__name__}"]
    shape_errors = _shape_errors(patch)
    well_shaped = {key: value for key, value in patch.items() if key not in shape_errors}
    # Imported lazily: the web process should not pay for modelzoo until a patch is validated.
    from modelzoo.config import validate_patch

    return list(shape_errors.values()) + (validate_patch(well_shaped) if well_shaped else [])
