"""REST representations. Input serializers only parse; services decide what is valid for the domain."""
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictSerializer
from ideas import visibility
from ideas.forms import parse_patch_text
from ideas.lifecycle import Status, allowed_targets
from ideas.models import MAX_MARKDOWN_CHARS, Area, Comment, Decision, Idea, Transition


class AreaSerializer(serializers.ModelSerializer):
    pic = serializers.CharField(source="pic.username", read_only=True)
    volunteers = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")

    class Meta:
        model = Area
        fields = ["slug", "name", "description", "pic", "volunteers", "restricted", "created_at"]


class AreaCreateSerializer(StrictSerializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    pic = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.filter(is_active=True))
    restricted = serializers.BooleanField(required=False, default=False)


@extend_schema_field({"type": "string", "description": "area slug"})
class VisibleAreaField(serializers.SlugRelatedField):
    """An area by slug, among those the requesting user may see: a restricted area reads as unknown."""

    def get_queryset(self):
        return visibility.visible_areas(self.context["request"].user)


class DecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)

    class Meta:
        model = Decision
        fields = ["outcome", "summary", "links", "decided_by", "created_at"]


class TransitionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True)
    decision = DecisionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Transition
        fields = ["from_status", "to_status", "actor", "note", "decision", "created_at"]


class IdeaSerializer(serializers.ModelSerializer):
    area = serializers.CharField(source="area.slug", read_only=True)
    pic = serializers.CharField(source="area.pic.username", read_only=True)
    submitter = serializers.CharField(source="submitter.username", read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    allowed_transitions = serializers.SerializerMethodField()

    class Meta:
        model = Idea
        fields = [
            "key", "title", "summary", "hypothesis", "area", "pic", "submitter", "status", "allowed_transitions",
            "recipe_patch", "estimated_gpu_hours", "tags", "created_at", "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=Status.choices)))
    def get_allowed_transitions(self, idea: Idea) -> list[str]:
        return list(allowed_targets(idea.status))


class IdeaDetailSerializer(IdeaSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)

    class Meta(IdeaSerializer.Meta):
        fields = [*IdeaSerializer.Meta.fields, "transitions"]


class IdeaSavedSerializer(IdeaDetailSerializer):
    """An idea as answered to the write that saved it, with warnings about its recipe patch (valid, but e.g.
    changing nothing against any current baseline): the API's counterpart of the form's warning messages."""

    warnings = serializers.SerializerMethodField()

    class Meta(IdeaDetailSerializer.Meta):
        fields = [*IdeaDetailSerializer.Meta.fields, "warnings"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, idea: Idea) -> list[str]:
        return list(self.context.get("warnings", []))


@extend_schema_field({"oneOf": [
    {"type": "object", "additionalProperties": True, "description": "dotted config key -> JSON value"},
    {"type": "string", "description": "`key = value` lines (values are JSON), as the web form takes them"},
]})
class RecipePatchField(serializers.JSONField):
    """A recipe patch in either form the web form accepts: a JSON object, or ``key = value`` lines parsed by
    the form's own parser (so both give the same errors)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                return parse_patch_text(data)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None
        return super().to_internal_value(data)


class IdeaCreateSerializer(StrictSerializer):
    title = serializers.CharField(max_length=200)
    summary = serializers.CharField(max_length=MAX_MARKDOWN_CHARS)
    hypothesis = serializers.CharField(max_length=MAX_MARKDOWN_CHARS, required=False, allow_blank=True, default="")
    area = VisibleAreaField(slug_field="slug")
    recipe_patch = RecipePatchField(required=False, default=dict)
    estimated_gpu_hours = serializers.DecimalField(
        max_digits=10, decimal_places=1, min_value=0, required=False, allow_null=True, default=None
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)


class IdeaUpdateSerializer(IdeaCreateSerializer):
    """PATCH body: any subset of the create fields."""


class DecisionInputSerializer(StrictSerializer):
    summary = serializers.CharField(max_length=MAX_MARKDOWN_CHARS)
    links = serializers.ListField(child=serializers.URLField(), required=False, default=list)


class TransitionInputSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    decision = DecisionInputSerializer(required=False, allow_null=True, default=None)


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "created_at"]


class CommentInputSerializer(StrictSerializer):
    body = serializers.CharField(max_length=MAX_MARKDOWN_CHARS)


class IllegalTransitionSerializer(serializers.Serializer):
    detail = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    allowed = serializers.ListField(child=serializers.CharField())


class IdeaListQuerySerializer(StrictSerializer):
    area = serializers.SlugField(required=False, default="", help_text="area slug")
    status = serializers.ChoiceField(choices=Status.choices, required=False, default="")
    q = serializers.CharField(required=False, default="", help_text="full-text search over key, title, summary, tags")
    pic = serializers.CharField(required=False, default="", help_text="username of the area's PIC")
    tag = serializers.CharField(required=False, default="")
    page = serializers.IntegerField(required=False, min_value=1)
