from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

EXPIRY_CHOICES = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “training cluster reporter”.")
    expires_in_days = forms.TypedChoiceField(label="Expires", choices=EXPIRY_CHOICES, coerce=int,
                                             empty_value=None, required=False)

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data["expires_in_days"]
        return None if days is None else timezone.now() + timedelta(days=days)
