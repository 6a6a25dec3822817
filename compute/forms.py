"""HTML forms of the compute pages: parse what people type into the plain values services take.

Domain rules (amount limits, phases, the tree invariant) live in services; their errors are put back on
these forms with ``core.forms.apply_service_error``.
"""
from django import forms

from compute.models import Pool, Review, Stage
from compute.visibility import visible_compute_areas
from core.forms import StorableTextMixin
from core.types import User
from ideas.models import Area, Idea

HOURS = {"max_digits": 12, "decimal_places": 2}


def form_error_text(form: forms.Form) -> str:
    """A form's errors in one line, each with its field: "area: Select a valid choice; sort: …"."""
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in form.errors.items())


class RequestForm(StorableTextMixin, forms.Form):
    area = forms.ModelChoiceField(queryset=Area.objects.order_by("name"), to_field_name="slug")
    idea = forms.ModelChoiceField(
        queryset=Idea.objects.order_by("-number"), to_field_name="key", required=False,
        help_text="Leave empty to ask for the whole area.",
    )
    pool = forms.ModelChoiceField(queryset=Pool.objects.order_by("name"), to_field_name="name", empty_label=None)
    gpu_hours = forms.DecimalField(label="GPU-hours", **HOURS)
    stage = forms.ChoiceField(choices=Stage.choices)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown. What will the hours buy, and what does the evidence show so far?")
    evidence_links = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="One per line: runs, studies or prior grants (http(s) URLs or paths on this site).",
    )
    amend = forms.IntegerField(required=False, widget=forms.HiddenInput, help_text="the open request the person chose to amend")

    def __init__(self, *args, user: User, **kwargs):
        """Only areas and ideas ``user`` may see are offered (and accepted): restricted ones stay unnamed."""
        super().__init__(*args, **kwargs)
        areas = visible_compute_areas(user)
        self.fields["area"].queryset = areas.order_by("name")
        self.fields["idea"].queryset = Idea.objects.filter(area__in=areas).order_by("-number")


class ReviewForm(StorableTextMixin, forms.Form):
    decision = forms.ChoiceField(choices=Review.Decision.choices)
    gpu_hours = forms.DecimalField(required=False, **HOURS)
    comment = forms.CharField(required=False, max_length=2000)


class GrantForm(StorableTextMixin, forms.Form):
    """Set one grant of an area: the area's own (``idea`` empty, reviewers) or an idea's (PIC or reviewers)."""

    idea = forms.ModelChoiceField(queryset=Idea.objects.none(), to_field_name="key", required=False, empty_label="— the area itself —")
    pool = forms.ModelChoiceField(queryset=Pool.objects.order_by("name"), to_field_name="name", empty_label=None)
    gpu_hours = forms.DecimalField(label="GPU-hours", **HOURS)
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, area: Area, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["idea"].queryset = Idea.objects.filter(area=area).order_by("number")


class PhaseForm(forms.Form):
    phase = forms.CharField(max_length=12)
