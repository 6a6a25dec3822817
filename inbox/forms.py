from django import forms


class EmailPreferenceForm(forms.Form):
    email = forms.BooleanField(required=False, label="Also send me each notification by email")
