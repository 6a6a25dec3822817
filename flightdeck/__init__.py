"""Python client and CLI for the Flightdeck REST API. Standard library and httpx only: it never imports
Django or the server's apps, so scripts and research agents can install it anywhere."""
__version__ = "0.1.0"

from flightdeck.client import Client  # noqa: E402  (the transport reads __version__)
from flightdeck.errors import (  # noqa: E402
    ApiError,
    BadRequest,
    BudgetRefused,
    ConfigurationError,
    Conflict,
    FlightdeckError,
    Forbidden,
    NotFound,
    PatchConflict,
    RateLimited,
    ServerError,
    ServerUnreachable,
    Unauthorized,
)

__all__ = ["ApiError", "BadRequest", "BudgetRefused", "Client", "ConfigurationError", "Conflict", "FlightdeckError",
           "Forbidden", "NotFound", "PatchConflict", "RateLimited", "ServerError", "ServerUnreachable",
           "Unauthorized", "__version__"]
