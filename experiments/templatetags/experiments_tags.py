"""Template helpers for experiment pages: run status badges, durations, differences, and the data of the
idea page's "Run ablation" panel."""
from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from experiments import selectors
from experiments.analysis import Difference
from experiments.execution import queue_status
from experiments.forms import AblationForm
from experiments.models import Run, RunStatus
from experiments.permissions import can_launch_study
from experiments.results import StudyRow, study_rows
from ideas.models import Idea

register = template.Library()

IDEA_PANEL_STUDIES = 10


@register.simple_tag
def run_badge(status: str) -> SafeString:
    label = RunStatus(status).label if status in RunStatus.values else status
    return format_html('<span class="badge run-{}">{}</span>', status, label)


@register.filter
def duration(seconds: float | None) -> str:
    """``5430`` → ``1h 30m``; ``None`` → ``—``."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@register.filter
def signed_percent(difference: Difference | None) -> str:
    """A difference to baseline as ``−1.8% ± 0.6%`` (``—`` when there is none)."""
    if difference is None:
        return "—"
    text = f"{difference.relative:+.2f}%".replace("-", "−")
    if difference.relative_half_width is not None:
        text += f" ± {difference.relative_half_width:.2f}%"
    return text


@register.filter
def percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"


@register.filter
def compact_number(value: float | None) -> str:
    """``1234567`` → ``1.23M``: token counts and other large numbers in narrow columns."""
    if value is None:
        return "—"
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@register.filter
def metric_value(value: float | None) -> str:
    """A final metric with four significant digits (losses), compact when large (tokens/s, memory)."""
    if value is None:
        return "—"
    return compact_number(value) if abs(value) >= 1e4 else f"{value:.4g}"


@register.filter
def run_wall_seconds(run: Run) -> float | None:
    """Seconds from the run's start to its end (or now while it runs)."""
    if run.started_at is None:
        return None
    return ((run.finished_at or timezone.now()) - run.started_at).total_seconds()


@dataclass(frozen=True)
class IdeaPanel:
    rows: list[StudyRow]
    form: AblationForm | None  # None: this user may not launch studies of this idea


@register.simple_tag(takes_context=True)
def idea_experiments(context: template.Context, idea: Idea) -> IdeaPanel:
    """The idea's newest studies with status and verdict, and the ablation form if the user may launch."""
    user = context["request"].user
    # A study of this idea and an idea of a restricted area is shown only to those who may see that area.
    studies = selectors.studies_with_arms(idea_id=idea.pk, user=user)[:IDEA_PANEL_STUDIES]
    baselines = selectors.baselines_latest()
    form = AblationForm(baselines=baselines) if baselines and can_launch_study(user, [idea]) else None
    return IdeaPanel(rows=study_rows(studies), form=form)


@register.inclusion_tag("experiments/_queue_warning.html")
def job_queue_warning() -> dict:
    """A warning banner while the job queue is unreachable: launches still work, their runs wait."""
    return {"queue_down": not queue_status.job_queue_reachable()}
