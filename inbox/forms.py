from django import forms

from inbox.models import Message


class EmailPreferenceForm(forms.Form):
    email = forms.BooleanField(required=False, label="Also send me each notification by email")


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. the channel it posts to")
    url = forms.CharField(max_length=500, label="URL", help_text="https://… (receives a signed JSON POST per event)")
    kinds = forms.MultipleChoiceField(choices=Message.Kind.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                      label="Events", help_text="none ticked: every event your inbox receives")
