"""REST representations of studies, runs and metrics. Input serializers only check shapes; the study
planner (``experiments.planning``) decides what is valid for the domain and names the offending field."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.analysis import ArmResult, Difference, SeedStats
from experiments.models import Attempt, Run, Study
from experiments.results import StudyResults
from experiments.selectors import study_status
from core.serializers import StrictSerializer


class StudyCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Study.Kind.choices)
    baseline = serializers.CharField(help_text="'name' (latest version) or 'name@N'")
    ideas = serializers.ListField(child=serializers.CharField(), help_text="idea keys, in composition order")
    seeds = serializers.ListField(child=serializers.IntegerField())
    max_steps = serializers.IntegerField()
    leave_one_out = serializers.BooleanField(default=False)
    resolutions = serializers.DictField(default=dict, help_text="conflicting dotted key -> the value to use")
    backend = serializers.CharField(required=False, allow_null=True, default=None)
    title = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    override = serializers.BooleanField(default=False, help_text="reviewers only: launch even over the grant's budget")
    override_reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ConflictSerializer(serializers.Serializer):
    key = serializers.CharField()
    values = serializers.ListField(child=serializers.DictField(), help_text="[{idea, value}, ...]")


class ConflictResponseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    conflicts = ConflictSerializer(many=True)


class StateConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.CharField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "state", "backend", "reason", "host", "slot", "devices", "exit_code",
                  "resumed_from_step", "code_revision", "code_dirty", "created_at", "started_at", "finished_at"]


class RunSummarySerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Run
        fields = ["id", "public_id", "seed", "status", "step", "max_steps", "progress", "tokens", "tokens_per_s",
                  "eta_seconds", "gpu_hours", "config_hash"]


class RunSerializer(RunSummarySerializer):
    study = serializers.IntegerField(source="study_id", read_only=True)
    arms = serializers.SerializerMethodField()
    attempts = AttemptSerializer(many=True, read_only=True)
    wandb = serializers.SerializerMethodField()

    class Meta(RunSummarySerializer.Meta):
        fields = [*RunSummarySerializer.Meta.fields, "study", "arms", "recipe", "overrides", "config", "backend",
                  "wandb_tags", "code_revision", "code_dirty", "created_at", "started_at", "finished_at",
                  "attempts", "wandb"]

    def get_arms(self, run: Run) -> list[str]:
        return [arm.name for arm in run.arms.all()]

    @extend_schema_field({"type": "object", "properties": {"id": {"type": "string"}, "project": {"type": "string"},
                                                           "group": {"type": "string"}, "dir": {"type": "string"},
                                                           "sync_command": {"type": "string"}}})
    def get_wandb(self, run: Run) -> dict[str, str]:
        return {"id": run.public_id, "project": run.study.baseline.name, "group": run.study.label,
                "dir": str(run.wandb_dir), "sync_command": run.wandb_sync_command}


def _stats(stats: SeedStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {"n": stats.n, "mean": stats.mean, "std": stats.std, "min": stats.min, "max": stats.max}


def _difference(difference: Difference | None) -> dict[str, Any] | None:
    if difference is None:
        return None
    return {"estimate": difference.estimate, "ci95": list(difference.interval) if difference.interval else None,
            "relative_percent": difference.relative, "relative_ci95_half_width": difference.relative_half_width,
            "method": difference.method, "seeds": difference.seeds, "significant": difference.significant}


_STATS_SCHEMA = {"type": "object", "nullable": True, "properties": {
    "n": {"type": "integer"}, "mean": {"type": "number"}, "std": {"type": "number", "nullable": True},
    "min": {"type": "number"}, "max": {"type": "number"}}}
_DIFFERENCE_SCHEMA = {"type": "object", "nullable": True, "properties": {
    "estimate": {"type": "number"}, "ci95": {"type": "array", "items": {"type": "number"}, "nullable": True},
    "relative_percent": {"type": "number"}, "relative_ci95_half_width": {"type": "number", "nullable": True},
    "method": {"type": "string", "enum": ["paired", "welch", "none"]}, "seeds": {"type": "integer"},
    "significant": {"type": "boolean"}}}


class StudyDetailSerializer(serializers.ModelSerializer):
    """A study with its arms (runs, final val loss per seed, seed stats, difference to baseline), all
    runs, the overall status and the verdict. Needs ``context["results"]`` (``experiments.results``); with
    ``?metric=`` the arms' finals, differences and verdict are about that metric instead of ``val_loss``."""

    baseline = serializers.CharField(source="baseline.label")
    ideas = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    arms = serializers.SerializerMethodField()
    runs = RunSummarySerializer(many=True, read_only=True)
    verdict = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()
    marginals = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")
    metric = serializers.SerializerMethodField(help_text="the metric that final_val_loss, vs_baseline and the verdict compare")

    class Meta:
        model = Study
        fields = ["id", "title", "kind", "baseline", "ideas", "seeds", "max_steps", "leave_one_out", "resolutions",
                  "backend", "status", "arms", "runs", "metric", "verdict", "warnings", "marginals", "created_by",
                  "created_at"]

    @property
    def _results(self) -> StudyResults:
        return self.context["results"]

    def get_ideas(self, study: Study) -> list[str]:
        return [member.idea.key for member in study.study_ideas.all()]

    def get_status(self, study: Study) -> str:
        return study_status(study.runs.all())

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "kind": {"type": "string"}, "ideas": {"type": "array", "items": {"type": "string"}},
        "patch": {"type": "object"}, "runs": {"type": "array", "items": {"type": "integer"}},
        "final_val_loss": {"type": "object", "additionalProperties": {"type": "number"}},
        "seed_stats": _STATS_SCHEMA, "vs_baseline": _DIFFERENCE_SCHEMA}}})
    def get_arms(self, study: Study) -> list[dict[str, Any]]:
        results: dict[str, ArmResult] = {arm.name: arm for arm in self._results.arms}
        return [
            {"name": arm.name, "kind": arm.kind, "ideas": arm.idea_keys, "patch": arm.patch,
             "runs": [run.pk for run in arm.runs.all()],
             "final_val_loss": {str(seed): value for seed, value in results[arm.name].values.items()},
             "seed_stats": _stats(results[arm.name].stats), "vs_baseline": _difference(results[arm.name].vs_baseline)}
            for arm in study.arms.all()
        ]

    def get_metric(self, study: Study) -> str:
        return self._results.metric

    def get_verdict(self, study: Study) -> list[str]:
        return self._results.verdict

    def get_warnings(self, study: Study) -> list[str]:
        return self._results.warnings

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "idea": {"type": "string"}, "text": {"type": "string"}, "difference": _DIFFERENCE_SCHEMA}}})
    def get_marginals(self, study: Study) -> list[dict[str, Any]]:
        return [{"idea": marginal.idea_key, "text": text, "difference": _difference(marginal.difference)}
                for marginal, text in zip(self._results.marginals, self._results.marginal_lines)]


class StudyMetricQuerySerializer(StrictSerializer):
    metric = serializers.CharField(max_length=64, default="val_loss",
                                   help_text="a loss the runs logged, lower is better, e.g. val_loss/python-docs")


class MetricQuerySerializer(StrictSerializer):
    name = serializers.CharField(max_length=64)
    max_points = serializers.IntegerField(required=False, min_value=3, max_value=100_000,
                                          help_text="downsample with LTTB to at most this many points")


class MetricSeriesSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField(help_text="points stored")
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                   help_text="[[step, value], ...] by step")


class CorpusQuerySerializer(StrictSerializer):
    kind = serializers.CharField(required=False, default="", help_text="only corpora whose kind starts with this, e.g. 'prose'")
    origin = serializers.ChoiceField(choices=["built-in", "registered"], required=False, default="")
    page = serializers.IntegerField(required=False, min_value=1)


class CorpusSplitTokensSerializer(serializers.Serializer):
    train = serializers.IntegerField()
    val = serializers.IntegerField()


class CorpusSerializer(serializers.Serializer):
    """A corpus recipes may name in data.corpus / data.blend; figures come from its cached builds (null until
    a run first uses it)."""

    name = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    origin = serializers.CharField(help_text="built-in, or registered by an operator in FLIGHTDECK_CORPORA_DIR")
    built = serializers.BooleanField()
    size_bytes = serializers.IntegerField(allow_null=True)
    files = serializers.IntegerField(allow_null=True)
    train_files = serializers.IntegerField(allow_null=True)
    val_files = serializers.IntegerField(allow_null=True)
    tokens = serializers.DictField(child=CorpusSplitTokensSerializer(), help_text="tokenizer -> tokens per split")
    usable_by = serializers.SerializerMethodField(help_text="who may name it in a recipe")

    def get_usable_by(self, corpus: object) -> str:
        return "everyone"
