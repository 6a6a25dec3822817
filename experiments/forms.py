"""HTML forms for launching studies: they parse what people type into the plain values
``services.study_launch`` takes. Ranges, unknown keys and conflicts are the planner's to judge; its
field-keyed errors are put back on these forms with ``core.forms.apply_service_error``."""
from __future__ import annotations

import json
import secrets
import re
from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from core.forms import StorableTextMixin

from experiments.models import Baseline
from ideas.models import Idea

RESOLVE_PREFIX = "resolve:"  # POST field per conflicting key: resolve:<dotted key> = <chosen value as JSON>


def parse_seeds(text: str) -> list[int]:
    """``"0, 1 2"`` → ``[0, 1, 2]``; anything but whole numbers is refused, naming the bad item."""
    seeds = []
    for item in filter(None, re.split(r"[\s,]+", text.strip())):
        if not re.fullmatch(r"-?\d+", item):
            raise ValidationError(f"{item!r} is not a whole number; list seeds like 0, 1, 2")
        seeds.append(int(item))
    if not seeds:
        raise ValidationError("list at least one seed, e.g. 0, 1")
    return seeds


class SeedsField(forms.CharField):
    def to_python(self, value: Any) -> list[int]:
        return parse_seeds(super().to_python(value))


def baseline_choices(baselines: Sequence[Baseline]) -> list[tuple[str, str]]:
    """Each baseline name (meaning its latest version) — the value the API also takes."""
    return [(baseline.name, f"{baseline.label} ({baseline.recipe})") for baseline in baselines]


class StudyFieldsForm(StorableTextMixin, forms.Form):
    """What every study needs: a baseline, seeds and a step budget."""

    baseline = forms.ChoiceField()
    seeds = SeedsField(initial="0, 1", help_text="Every arm trains with each of these seeds.")
    max_steps = forms.IntegerField(label="Step budget", initial=200, help_text="Training steps per run.")
    override = forms.BooleanField(required=False, label="Launch over the grant's budget",
                                  help_text="Reviewers only; compute logs the override with its reason.")
    override_reason = forms.CharField(required=False, max_length=500, label="Reason for the override")
    # One-time token: a second POST of the same rendered form (double click, slow server) launches nothing.
    launch_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64,
                                   initial=lambda: secrets.token_urlsafe(24))

    def __init__(self, *args: Any, baselines: Sequence[Baseline], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["baseline"].choices = baseline_choices(baselines)


class AblationForm(StudyFieldsForm):
    """The idea page's "Run ablation" panel: baseline vs baseline ⊕ this idea."""


class IntegrationForm(StudyFieldsForm):
    """All chosen ideas together against the baseline; conflicts are resolved with ``resolve:<key>`` fields."""

    ideas = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="Patches compose in this order.")
    leave_one_out = forms.BooleanField(required=False, label="Leave-one-out arms",
                                       help_text="Add an 'all but X' arm per idea to measure each idea's contribution.")
    title = forms.CharField(required=False, max_length=200)

    field_order = ["baseline", "ideas", "seeds", "max_steps", "leave_one_out", "title"]

    def __init__(self, *args: Any, baselines: Sequence[Baseline], ideas: Sequence[Idea],
                 launchable_areas: set[int] | None = None, **kwargs: Any):
        """``launchable_areas``: areas whose ideas the user may launch with (None: all); the others are marked
        in their labels before anyone presses Launch, and listed in ``blocked``."""
        super().__init__(*args, baselines=baselines, **kwargs)
        self.blocked = {idea.key: idea.area.name for idea in ideas
                        if launchable_areas is not None and idea.area_id not in launchable_areas}
        self.fields["ideas"].choices = [
            (idea.key, f"{idea.key} {idea.title}" + (f" — needs {self.blocked[idea.key]}'s PIC or a volunteer there"
                                                     if idea.key in self.blocked else ""))
            for idea in ideas
        ]

    def blocked_choices(self) -> list[str]:
        """Chosen ideas the user may not launch with, as "IDEA-0003 (area name)" (after ``is_valid()``)."""
        return [f"{key} ({self.blocked[key]})" for key in self.cleaned_data.get("ideas", []) if key in self.blocked]

    def resolutions(self) -> dict[str, Any]:
        """The explicitly chosen values of conflicting keys (``resolve:<key>`` fields, JSON values)."""
        chosen = {}
        for name, raw in self.data.items():
            if name.startswith(RESOLVE_PREFIX) and raw != "":
                try:
                    chosen[name.removeprefix(RESOLVE_PREFIX)] = json.loads(raw)
                except json.JSONDecodeError:
                    chosen[name.removeprefix(RESOLVE_PREFIX)] = raw
        return chosen

    def launch_arguments(self) -> dict[str, Any]:
        """``services.study_launch`` keyword arguments (after ``is_valid()``)."""
        data = self.cleaned_data
        return {"kind": "integration", "baseline": data["baseline"], "ideas": data["ideas"], "seeds": data["seeds"],
                "max_steps": data["max_steps"], "leave_one_out": data["leave_one_out"],
                "resolutions": self.resolutions(), "title": data["title"], "override": data["override"],
                "override_reason": data["override_reason"]}


class RunAnnotateForm(forms.Form):
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    tags = forms.CharField(required=False, help_text="separated by spaces, e.g. lr-sweep keep")
