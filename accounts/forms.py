import logging
from datetime import datetime, timedelta

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.utils import timezone

from core.forms import StorableTextMixin

logger = logging.getLogger(__name__)

EXPIRY_CHOICES = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class ApiTokenForm(StorableTextMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “training cluster reporter”.")
    expires_in_days = forms.TypedChoiceField(label="Expires", choices=EXPIRY_CHOICES, coerce=int,
                                             empty_value=None, required=False)

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data["expires_in_days"]
        return None if days is None else timezone.now() + timedelta(days=days)


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, but the email goes out from a Celery worker (``accounts.tasks``), so a request
    never waits on the mail server and the answer takes as long whether or not the address has an account."""

    def send_mail(self, subject_template_name: str, email_template_name: str, context: dict, from_email: str | None,
                  to_email: str, html_email_template_name: str | None = None) -> None:
        from accounts.tasks import send_password_reset  # tasks → services → forms' neighbours: imported late

        try:
            send_password_reset.apply_async((context["user"].pk, context["domain"], context["protocol"] == "https"),
                                            retry_policy={"max_retries": 1, "interval_start": 0})
        except Exception as error:  # noqa: BLE001 - broker down: the page answers as usual, the user may retry
            logger.warning("password reset mail for user %s not queued: %s", context["user"].pk, error)
