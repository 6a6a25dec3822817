"""System checks for the compute settings, with stable ids."""
from datetime import date
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_compute_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    anchor = settings.FLIGHTDECK_COMPUTE_CYCLE_ANCHOR
    try:
        if date.fromisoformat(anchor).weekday() != 0:
            errors.append(Error(f"FLIGHTDECK_COMPUTE_CYCLE_ANCHOR {anchor!r} is not a Monday", id="compute.E001"))
    except ValueError:
        errors.append(Error(f"FLIGHTDECK_COMPUTE_CYCLE_ANCHOR {anchor!r} is not a YYYY-MM-DD date", id="compute.E001"))
    if not 1 <= settings.FLIGHTDECK_COMPUTE_REVIEW_DAYS <= 13:
        errors.append(Error("FLIGHTDECK_COMPUTE_REVIEW_DAYS must be between 1 and 13 (days before a cycle starts)", id="compute.E002"))
    raw = settings.FLIGHTDECK_COMPUTE_TARGET_UTILISATION
    try:
        utilisation = Decimal(str(raw))
        valid = utilisation.is_finite() and 0 < utilisation <= 1
    except InvalidOperation:
        valid = False
    if not valid:
        errors.append(Error(f"FLIGHTDECK_COMPUTE_TARGET_UTILISATION must be a number in (0, 1], got {raw!r}", id="compute.E003"))
    return errors
