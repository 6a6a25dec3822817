"""Recipe patches: the one validator the idea form, the API and the study composer share."""
from typing import Any

_SCALARS = (str, int, float, bool)


def _shape_errors(patch: dict) -> dict[str, str]:
    """Entries that are not `dotted.key: JSON scalar or list`, keyed by the offending key."""
    errors = {}
    for key, value in patch.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            errors[key] = f"{key!r}: keys must be dotted config paths such as 'moe.latent_size'"
        elif not (isinstance(value, _SCALARS) or _is_scalar_list(value)):
            errors[key] = f"{key}: value must be a JSON scalar or a list of scalars, got {type(value).__name__}"
    return errors


def _is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value)


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
