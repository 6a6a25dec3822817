"""HTML forms: parse what people type into the plain values services take. Validation of the domain
itself (lengths, patch keys, lifecycle) lives in services; their errors are put back on these forms."""
import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from core.forms import StorableTextMixin

from ideas.lifecycle import Status
from ideas.models import Area
from core.jsonkeys import DuplicateKeyError, unique_keys_object
from ideas.patches import validate_recipe_patch

PATCH_HELP = 'One "key = value" per line (values are JSON: 128, true, 3e-4, "bf16"), or a JSON object.'


def parse_patch_text(text: str) -> dict[str, Any]:
    """``moe.latent_size = 128`` lines (or a JSON object) → dict; values parse as JSON, else stay strings,
    the same rule as the trainer's ``--set`` flag. A key set twice is refused, naming it: which of the two
    values was meant cannot be guessed."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            patch = json.loads(text, object_pairs_hook=unique_keys_object)
        except json.JSONDecodeError as error:
            raise ValidationError(f"not valid JSON: {error.msg} (line {error.lineno})") from None
        except DuplicateKeyError as error:
            raise ValidationError(str(error)) from None
        if not isinstance(patch, dict):
            raise ValidationError("a JSON recipe patch must be an object")
        return patch
    patch: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"line {number}: expected `key = value`, got {line!r}")
        key = key.strip()
        if key in first_line:
            raise ValidationError(f"line {number}: {key} is set twice (first on line {first_line[key]}); keep one value")
        first_line[key] = number
        try:
            value = json.loads(raw.strip())
        except json.JSONDecodeError:
            value = raw.strip()
        patch[key] = value
    return patch


def patch_to_text(patch: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in patch.items())


class IdeaForm(StorableTextMixin, forms.Form):
    title = forms.CharField(max_length=200)
    area = forms.ModelChoiceField(queryset=Area.objects.select_related("pic").order_by("name"), empty_label="Choose an area…")
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown. What and why.")
    hypothesis = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Markdown. What result would confirm it?",
    )
    recipe_patch = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono", "placeholder": "moe.latent_size = 128\nfp4.stochastic_rounding = true"}),
        help_text=PATCH_HELP,
    )
    estimated_gpu_hours = forms.DecimalField(
        label="Estimated GPU-hours", required=False, min_value=0, max_digits=10, decimal_places=1
    )
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. moe, routing")

    def __init__(self, *args: Any, areas: QuerySet[Area], **kwargs: Any) -> None:
        """``areas``: the areas the user may see (``ideas.visibility``), so restricted ones stay unnamed."""
        super().__init__(*args, **kwargs)
        self.fields["area"].queryset = areas.select_related("pic").order_by("name")

    def clean_recipe_patch(self) -> dict[str, Any]:
        patch = parse_patch_text(self.cleaned_data["recipe_patch"])
        # Checked here as well as in the service so patch errors show up together with the other fields'.
        errors = validate_recipe_patch(patch)
        if errors:
            raise ValidationError(errors)
        return patch

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class IdeaFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", widget=forms.TextInput(attrs={"placeholder": "Key, title, summary, tag…", "type": "search"}))
    area = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    pic = forms.ChoiceField(required=False, label="PIC")
    tag = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, areas: list[tuple[str, str, str]], tags: list[str], **kwargs: Any):
        """``areas``: (slug, name, PIC username) triples, as selectors.area_filter_choices returns them."""
        super().__init__(*args, **kwargs)
        self.fields["area"].choices = [("", "Any area"), *((slug, name) for slug, name, _ in areas)]
        pics = sorted({pic for _, _, pic in areas})
        self.fields["pic"].choices = [("", "Any PIC"), *((name, name) for name in pics)]
        self.fields["tag"].choices = [("", "Any tag"), *((name, name) for name in tags)]


class TransitionForm(StorableTextMixin, forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    decision_summary = forms.CharField(
        required=False, label="What the evidence showed", widget=forms.Textarea(attrs={"rows": 4})
    )
    decision_links = forms.CharField(
        required=False, label="Evidence links", widget=forms.Textarea(attrs={"rows": 2}), help_text="One URL per line"
    )

    SERVICE_FIELDS = {"to": "to_status", "decision": "decision_summary", "decision.links": "decision_links",
                      "decision.summary": "decision_summary"}


class CommentForm(StorableTextMixin, forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Markdown welcome"}))


class HandoverForm(StorableTextMixin, forms.Form):
    to_user = forms.ModelChoiceField(
        label="New PIC", queryset=get_user_model().objects.filter(is_active=True).order_by("username")
    )
    note = forms.CharField(required=False, max_length=500)
