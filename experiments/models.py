"""Baselines, studies, arms, runs, attempts and metrics.

    Baseline (name@version) ─< Study ─< Arm >─< Run ─< Attempt
                                           Run ─< Metric (run, step, name) unique

A *run* is one fully resolved config (baseline recipe ⊕ arm patch ⊕ seed ⊕ budget), stored and hashed;
runs with the same hash inside one study are shared by every arm that needs them. An *attempt* is one
execution of a run on some worker; the database allows at most one live attempt per run.
Writes go through ``experiments.services`` (user actions) and ``experiments.execution.attempts`` (the worker side).
"""
from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

USER = settings.AUTH_USER_MODEL


class Backend(models.TextChoices):
    LOCAL = "local", "Local workers"
    SLURM = "slurm", "Slurm (submitit)"


class Baseline(models.Model):
    """A named, versioned recipe: a modelzoo recipe plus dotted overrides. Saving a change adds a version;
    studies pin the exact version they ran against (``nano-baseline@3``)."""

    name = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    recipe = models.CharField(max_length=120, help_text="modelzoo recipe name, e.g. tiny-ci")
    overrides = models.JSONField(default=dict, blank=True, help_text="dotted key -> value applied to the recipe")
    backend = models.CharField(max_length=10, choices=Backend.choices, default=Backend.LOCAL)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="experiments_baseline_version_unique")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class Study(models.Model):
    """An ablation (baseline vs baseline ⊕ X, per idea) or an integration (baseline vs all ideas together,
    optionally leave-one-out arms). Seeds and the step budget are the same for every arm."""

    class Kind(models.TextChoices):
        ABLATION = "ablation", "Ablation"
        INTEGRATION = "integration", "Integration"

    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    baseline = models.ForeignKey(Baseline, on_delete=models.PROTECT, related_name="studies")
    ideas = models.ManyToManyField("ideas.Idea", through="StudyIdea", related_name="studies")
    seeds = models.JSONField(help_text="list of integer seeds, the same for every arm")
    max_steps = models.PositiveIntegerField()
    leave_one_out = models.BooleanField(default=False)
    resolutions = models.JSONField(
        default=dict, blank=True, help_text="dotted key -> value chosen explicitly where ideas conflict"
    )
    backend = models.CharField(max_length=10, choices=Backend.choices, help_text="resolved: study's or baseline's")
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="launched_studies")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return f"{self.label} {self.title}"

    @property
    def label(self) -> str:
        """Stable human name, also the wandb group."""
        return f"study-{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("experiments:study_detail", args=[self.pk])


class StudyIdea(models.Model):
    """An idea in a study, in the order the user listed them (composition order of patches)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="study_ideas")
    idea = models.ForeignKey("ideas.Idea", on_delete=models.PROTECT, related_name="study_memberships")
    position = models.PositiveSmallIntegerField()
    patch = models.JSONField(help_text="the idea's recipe patch as it was at launch")

    class Meta:
        ordering = ["study", "position"]
        constraints = [models.UniqueConstraint(fields=["study", "idea"], name="experiments_study_idea_unique")]


class Arm(models.Model):
    """One treatment of a study: its composed patch over the baseline, run with every seed."""

    class Kind(models.TextChoices):
        BASELINE = "baseline", "Baseline"
        SINGLE = "single", "Baseline ⊕ one idea"
        ALL = "all", "All ideas"
        LEAVE_ONE_OUT = "leave_one_out", "All but one idea"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=120, help_text="baseline, +IDEA-0003, all, all-IDEA-0003")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    position = models.PositiveSmallIntegerField()
    idea_keys = models.JSONField(default=list, help_text="ideas whose patches this arm applies, in order")
    patch = models.JSONField(default=dict, help_text="composed patch (with resolutions) over the baseline")
    runs = models.ManyToManyField("Run", related_name="arms")

    class Meta:
        ordering = ["study", "position"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="experiments_arm_name_unique")]

    def __str__(self) -> str:
        return self.name


def new_public_id() -> str:
    """Short random id, valid as a wandb run id (lowercase letters and digits)."""
    return "r" + secrets.token_hex(6)


class RunStatus(models.TextChoices):
    """A run's status mirrors its latest attempt's state."""

    QUEUED = "queued", "Queued"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    PREEMPTED = "preempted", "Preempted"


LIVE_STATES: tuple[str, ...] = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)
FINAL_STATES: tuple[str, ...] = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PREEMPTED)


class Run(models.Model):
    """One arm × seed: a fully resolved trainer config, its progress and its cost."""

    public_id = models.CharField(max_length=20, unique=True, default=new_public_id, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="runs")
    seed = models.BigIntegerField()
    recipe = models.CharField(max_length=120, help_text="modelzoo recipe the overrides apply to")
    overrides = models.JSONField(help_text="every --set the trainer gets: baseline ⊕ patch ⊕ seed ⊕ budget")
    config = models.JSONField(help_text="the resolved modelzoo Recipe.to_dict()")
    config_hash = models.CharField(max_length=64)
    backend = models.CharField(max_length=10, choices=Backend.choices)
    wandb_tags = models.JSONField(default=list, help_text="idea keys of the arm that created the run")
    # Queryable copies for the runs explorer (filter by config key, order by a final metric) at 100k runs
    # without reading Metric rows: written at launch and by metric ingestion respectively.
    config_flat = models.JSONField(default=dict, help_text="the resolved config as dotted key -> value")
    final_metrics = models.JSONField(default=dict, help_text="metric name -> value at its last logged step")
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)

    # Progress, written by the monitor from metrics.jsonl.
    step = models.PositiveIntegerField(default=0)
    max_steps = models.PositiveIntegerField()
    tokens = models.BigIntegerField(default=0)
    tokens_per_s = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)

    # Reproducibility and cost.
    code_revision = models.CharField(max_length=40, blank=True, help_text="git sha of the worker that ran it last")
    code_dirty = models.BooleanField(default=False, help_text="the worker's tree had uncommitted changes")
    gpu_hours = models.FloatField(default=0.0, help_text="sum over attempts of devices × wall hours")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            # Identical configs inside a study are trained once and shared by the arms that need them.
            models.UniqueConstraint(fields=["study", "config_hash"], name="experiments_run_config_unique"),
        ]
        indexes = [models.Index(fields=["status"], name="experiments_run_status_idx")]

    def __str__(self) -> str:
        return self.public_id

    @property
    def tag_names(self) -> list[str]:
        """Tags by name (uses prefetched ``tags`` when present)."""
        return sorted(tag.name for tag in self.tags.all())

    @property
    def run_dir(self) -> Path:
        return settings.FLIGHTDECK_RUNS_DIR / self.public_id

    @property
    def wandb_dir(self) -> Path:
        """Where the trainer's wandb files go (WANDB_DIR points at the run directory)."""
        return self.run_dir / "wandb"

    @property
    def wandb_sync_command(self) -> str:
        """Uploads an offline run; every resumed attempt appended to the same wandb run id."""
        return f"wandb sync {self.wandb_dir}/offline-run-*-{self.public_id}"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATES

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.max_steps) if self.max_steps else 0.0

    def get_absolute_url(self) -> str:
        return reverse("experiments:run_detail", args=[self.pk])


class Attempt(models.Model):
    """One execution of a run. The row, its lease and its heartbeat are the truth; Celery messages only
    say "look at attempt N now"."""

    State = RunStatus

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the first attempt of the run, then 2, ...")
    state = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    backend = models.CharField(max_length=10, choices=Backend.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="why it ended the way it did")

    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="last time a start message was sent")
    host = models.CharField(max_length=120, blank=True)
    slot = models.IntegerField(null=True, blank=True, help_text="GPU index (or CPU slot) on the host")
    devices = models.PositiveSmallIntegerField(default=1, help_text="devices held; GPU-hours = devices × hours")
    pid = models.IntegerField(null=True, blank=True)
    pgid = models.IntegerField(null=True, blank=True)
    external_id = models.CharField(max_length=64, blank=True, help_text="Slurm job id on the slurm backend")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+", help_text="who cancelled it (kept when the reason is rewritten)")

    code_revision = models.CharField(max_length=40, blank=True)
    code_dirty = models.BooleanField(default=False)
    resumed_from_step = models.PositiveIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    log_tail = models.TextField(blank=True, help_text="last lines of the trainer's output when it failed")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="experiments_attempt_number_unique"),
            models.UniqueConstraint(
                fields=["run"], condition=models.Q(state__in=LIVE_STATES), name="experiments_one_live_attempt"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "lease_expires_at"], name="experiments_attempt_lease_idx"),
            models.Index(fields=["state", "enqueued_at"], name="experiments_attempt_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.run.public_id}#{self.number}"

    @property
    def log_path(self) -> Path:
        """The trainer's stdout and stderr for this attempt."""
        return self.run.run_dir / f"attempt-{self.number}.log"

    @property
    def wall_seconds(self) -> float:
        if not self.started_at:
            return 0.0
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def gpu_hours(self) -> float:
        return self.devices * self.wall_seconds / 3600


class Metric(models.Model):
    """One logged value. (run, step, name) is unique and rows are written by upsert, so reading the same
    metrics file twice, or a resumed attempt logging a step again, never duplicates a point."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=64)
    value = models.FloatField()

    class Meta:
        ordering = ["run", "name", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "name", "step"], name="experiments_metric_point_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name}@{self.step}={self.value}"


class RunTag(models.Model):
    """A free-form label on a run, edited by the people who may manage its study; filterable in the explorer."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    name = models.SlugField(max_length=40, allow_unicode=True)

    class Meta:
        ordering = ["run", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="experiments_run_tag_unique")]
        indexes = [models.Index(fields=["name", "run"], name="experiments_runtag_name_idx")]

    def __str__(self) -> str:
        return self.name


class SlotLease(models.Model):
    """A device slot on a host held by one attempt. Unique (host, slot) makes leasing race-free across
    several workers on one host; a row whose attempt is no longer live is free to take over."""

    host = models.CharField(max_length=120)
    slot = models.IntegerField()
    attempt = models.OneToOneField(Attempt, on_delete=models.CASCADE, related_name="slot_lease")
    acquired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "slot"]
        constraints = [models.UniqueConstraint(fields=["host", "slot"], name="experiments_slot_unique")]


class RunSeries(models.Model):
    """A run's curve of one metric, downsampled for charts (``experiments.series``): written when the run
    ends, so a study page reads a few hundred points per run instead of every logged step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="series")
    name = models.CharField(max_length=64)
    steps = models.JSONField(help_text="ascending steps, one per kept point")
    values = models.JSONField(help_text="the metric at those steps (a bucket's mean where points were merged)")
    bucket = models.PositiveIntegerField(help_text="logged points merged into each kept point at most")
    source_points = models.PositiveIntegerField(help_text="logged points the series was made from")
    mean = models.FloatField(help_text="mean of all logged points")
    maximum = models.FloatField(help_text="largest logged point")

    class Meta:
        ordering = ["run", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="experiments_runseries_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name} ({len(self.steps)} points)"
