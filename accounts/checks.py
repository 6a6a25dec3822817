"""System checks: a malformed rate limit stops start-up with the setting's name, not a 500 at the first request."""
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from accounts.ratelimit import parse_rate

REQUIRED_RATES = ("login_username", "login_ip", "password_reset_email", "password_reset_ip", "api_user", "api_anon")


@checks.register(checks.Tags.security)
def check_rate_limits(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    rates = getattr(settings, "FLIGHTDECK_RATELIMITS", {})
    errors: list[checks.CheckMessage] = []
    for name in REQUIRED_RATES:
        if name not in rates:
            errors.append(checks.Error(f"FLIGHTDECK_RATELIMITS has no {name!r} rate", id="accounts.E001"))
            continue
        try:
            parse_rate(rates[name], name=name)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="accounts.E002"))
    proxies = getattr(settings, "FLIGHTDECK_TRUSTED_PROXIES", 0)
    if not isinstance(proxies, int) or proxies < 0:
        errors.append(checks.Error("FLIGHTDECK_TRUSTED_PROXIES must be a whole number ≥ 0", id="accounts.E003"))
    return errors
