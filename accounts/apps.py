from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in, sessions, personal API tokens and the rate limits in front of them."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401  (registers the system checks)
        from accounts import schema  # noqa: F401  (registers the OpenAPI extension for token auth)
