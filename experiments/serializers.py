"""REST representations of studies, runs and metrics. Input serializers only check shapes; the study
planner (``experiments.planning``) decides what is valid for the domain and names the offending field."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from django.utils import timezone
from rest_framework import serializers

from experiments.analysis import ArmResult, Difference, SeedStats
from experiments.models import Attempt, Baseline, Run, RunStatus, Study
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


class RunListSerializer(RunSummarySerializer):
    """A row of the runs explorer: the run, where it comes from and ``final``, the value of every metric at its
    last logged step. Reads only joined and prefetched data (``experiments.explorer.runs_explore``)."""

    study = serializers.IntegerField(source="study_id", read_only=True)
    study_title = serializers.CharField(source="study.title", read_only=True)
    baseline = serializers.CharField(source="study.baseline.label", read_only=True)
    launcher = serializers.CharField(source="study.created_by.username", read_only=True)
    arms = serializers.SerializerMethodField()
    ideas = serializers.ListField(source="wandb_tags", child=serializers.CharField(), read_only=True)
    tags = serializers.ListField(source="tag_names", child=serializers.CharField(), read_only=True)
    wall_seconds = serializers.SerializerMethodField()
    final = serializers.DictField(source="final_metrics", child=serializers.FloatField(), read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta(RunSummarySerializer.Meta):
        fields = [*RunSummarySerializer.Meta.fields, "study", "study_title", "baseline", "launcher", "arms", "ideas",
                  "tags", "wall_seconds", "created_at", "started_at", "finished_at", "final", "url"]

    def get_arms(self, run: Run) -> list[str]:
        return [arm.name for arm in run.arms.all()]

    def get_wall_seconds(self, run: Run) -> float | None:
        if run.started_at is None:
            return None
        return ((run.finished_at or timezone.now()) - run.started_at).total_seconds()


class RunListQuerySerializer(serializers.Serializer):
    """Documents the explorer's parameters for the schema; ``experiments.explorer.parse_run_query`` parses them
    (``config.<dotted key>`` parameters are open-ended, which a serializer cannot express)."""

    study = serializers.IntegerField(required=False)
    idea = serializers.CharField(required=False, help_text="idea key: runs of studies that include it")
    area = serializers.CharField(required=False, help_text="area slug: runs of studies with an idea in it")
    baseline = serializers.CharField(required=False, help_text="'name' or 'name@version'")
    status = serializers.CharField(required=False, help_text="one status or several, comma-separated")
    launcher = serializers.CharField(required=False, help_text="username of whoever launched the study")
    tag = serializers.CharField(required=False)
    search = serializers.CharField(required=False, help_text="every word must appear in the run id, study title, "
                                                             "the study's idea titles and keys, or notes")
    ordering = serializers.CharField(required=False, help_text="a field (id, created_at, started_at, finished_at, "
                                     "status, step, tokens, tokens_per_s, gpu_hours, seed, study), final.<metric> or "
                                     "config.<dotted key>; '-' for descending. Default -id")
    page = serializers.IntegerField(required=False)


class RunCompareSerializer(serializers.Serializer):
    runs = RunListSerializer(many=True)
    config_diff = serializers.DictField(child=serializers.ListField(), help_text="dotted key -> value per run, "
                                        "only keys whose values differ")
    final = serializers.DictField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                  help_text="metric -> final value per run (null where a run did not log it)")


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
    name = serializers.CharField(max_length=64, help_text="any logged metric name, e.g. val_loss or val_loss/wiki")
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


# --------------------------------------------------------------------------------------- lists and preview


class StudyListQuerySerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Study.Kind.choices, required=False, default="")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False, default="",
                                     help_text="the study's overall status (running while any run is live)")
    idea = serializers.CharField(required=False, default="", help_text="idea key, e.g. IDEA-0042")
    area = serializers.SlugField(required=False, default="", help_text="area slug of any of the study's ideas")
    launched_by = serializers.CharField(required=False, default="", help_text="username")
    baseline = serializers.RegexField(r"^[-\w]+(@\d+)?$", required=False, default="",
                                      help_text="'name' (any version) or 'name@N'")
    page = serializers.IntegerField(required=False, min_value=1)


class StudyListSerializer(serializers.ModelSerializer):
    """A study in a list: what it is and where it stands (``status`` and ``run_count`` come annotated by
    ``selectors.study_search``)."""

    baseline = serializers.CharField(source="baseline.label")
    ideas = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    run_count = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Study
        fields = ["id", "title", "kind", "baseline", "ideas", "seeds", "max_steps", "leave_one_out", "backend",
                  "status", "run_count", "created_by", "created_at"]

    def get_ideas(self, study: Study) -> list[str]:
        return [member.idea.key for member in study.study_ideas.all()]


class StudyCancelSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField(help_text="how many runs were live and are now cancelled or stopping")


class PreviewArmSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    ideas = serializers.ListField(child=serializers.CharField(), source="idea_keys")
    patch = serializers.DictField(help_text="composed patch of this arm's ideas, dotted key -> value")


class PreviewRunSerializer(serializers.Serializer):
    seed = serializers.IntegerField()
    arms = serializers.ListField(child=serializers.CharField(), source="arm_names",
                                 help_text="more than one: arms with identical configs share this run")
    config_hash = serializers.CharField()


class PreviewBudgetSerializer(serializers.Serializer):
    grant = serializers.CharField(help_text="the grant the study would run under")
    requested = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    remaining = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False)
    covered = serializers.BooleanField(source="allowed", help_text="whether what is left of the grant covers it")
    can_grant_more = serializers.ListField(child=serializers.CharField(), help_text="who to ask for more")
    message = serializers.CharField()


class StudyPreviewSerializer(serializers.Serializer):
    """What launching would do (``experiments.preview.StudyPreview``); nothing is created."""

    kind = serializers.CharField(source="plan.kind")
    baseline = serializers.CharField(source="plan.baseline.label")
    ideas = serializers.SerializerMethodField()
    seeds = serializers.ListField(child=serializers.IntegerField(), source="plan.seeds")
    max_steps = serializers.IntegerField(source="plan.max_steps")
    leave_one_out = serializers.BooleanField(source="plan.leave_one_out")
    backend = serializers.CharField(source="plan.backend")
    resolutions = serializers.DictField(source="plan.resolutions")
    composed_patch = serializers.DictField(source="plan.composed_patch",
                                           help_text="all ideas' patches composed key by key")
    conflicts = serializers.SerializerMethodField()
    arms = PreviewArmSerializer(many=True, source="plan.arms")
    runs = PreviewRunSerializer(many=True, source="plan.runs")
    run_count = serializers.SerializerMethodField()
    merged = serializers.ListField(child=serializers.DictField(), source="merged_runs",
                                   help_text="[{arms, seeds}]: arms whose configs are identical train one run per seed")
    tokens_per_run = serializers.IntegerField(source="plan.tokens_per_run")
    estimated_gpu_hours = serializers.FloatField(source="plan.estimated_gpu_hours", allow_null=True,
                                                 help_text="null until runs of this recipe have measured throughput")
    budget = PreviewBudgetSerializer(allow_null=True, help_text="null where no compute pool is defined")
    can_launch = serializers.BooleanField(help_text="whether this user may launch these ideas")
    launchable = serializers.BooleanField(help_text="whether a launch with this body would be accepted now")
    problems = serializers.ListField(child=serializers.CharField(), help_text="why it would be refused")

    def get_ideas(self, preview) -> list[str]:
        return [idea.key for idea in preview.plan.ideas]

    @extend_schema_field(ConflictSerializer(many=True))
    def get_conflicts(self, preview) -> list[dict[str, Any]]:
        return [conflict.to_dict() for conflict in preview.plan.conflicts]

    def get_run_count(self, preview) -> int:
        return len(preview.plan.runs)


class BaselineSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Baseline
        fields = ["name", "version", "label", "recipe", "overrides", "backend", "description", "created_by",
                  "created_at"]


class BaselineVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Baseline
        fields = ["version", "recipe", "overrides", "backend", "created_at"]


class BaselineDetailSerializer(BaselineSerializer):
    """The latest version with every version and the resolved config (``context["config"]``)."""

    versions = serializers.SerializerMethodField()
    config = serializers.SerializerMethodField()

    class Meta(BaselineSerializer.Meta):
        fields = [*BaselineSerializer.Meta.fields, "versions", "config"]

    @extend_schema_field(BaselineVersionSerializer(many=True))
    def get_versions(self, baseline: Baseline) -> list[dict[str, Any]]:
        return BaselineVersionSerializer(self.context["versions"], many=True).data

    @extend_schema_field({"type": "object", "description": "the recipe with the overrides applied, as the trainer reads it"})
    def get_config(self, baseline: Baseline) -> dict[str, Any]:
        return self.context["config"]


class RunLogQuerySerializer(StrictSerializer):
    attempt = serializers.IntegerField(required=False, min_value=1, help_text="attempt number (default: the latest)")
    offset = serializers.IntegerField(required=False, default=0, min_value=0, help_text="byte offset to read from")


class RunLogSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    attempt = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(help_text="ask again from here for what follows")
    text = serializers.CharField(allow_blank=True)
    complete = serializers.BooleanField(help_text="the attempt has ended and the whole log has been read")
