"""Warnings about a recipe patch that is valid but may not do what its submitter thinks (it changes nothing
against any current baseline). The baselines belong to experiments, which ideas may not import, so the setting
``FLIGHTDECK_IDEA_PATCH_WARNINGS`` names the function that knows them; empty, there are no warnings."""
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


def patch_warnings(patch: dict[str, Any]) -> list[str]:
    path = getattr(settings, "FLIGHTDECK_IDEA_PATCH_WARNINGS", "")
    return import_string(path)(patch) if path and patch else []
