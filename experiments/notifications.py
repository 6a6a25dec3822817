"""What a study's end means as messages: published each time one of its runs ends, delivered once all have.

The builder re-reads the rows and returns None while a run is still live (a preempted run is re-queued), so
the many publishes of one study make one announcement per finish (``ideas.notifications`` for the rules).
"""
from collections import Counter

from django.contrib.auth import get_user_model
from django.db.models import Max

from experiments.models import Attempt, RunStatus, Study
from experiments.selectors import study_status
from ideas.models import Idea
from ideas.notifications import event_for_viewers
from inbox import events
from inbox.events import Event
from inbox.models import Message

STUDY_RUN_ENDED = "study_run_ended"  # ref: the experiments.Study whose run just ended
STUDY_OUTCOMES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def publish_study_run_ended(study_id: int) -> None:
    """A run of study ``study_id`` ended; its watchers are told once its last run has (after commit)."""
    events.publish(STUDY_RUN_ENDED, study_id)


@events.source(STUDY_RUN_ENDED)
def study_finished_event(study_id: int) -> Event | None:
    """Once no run of the study is live: its creator, the watchers of its ideas and their areas' PICs."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return None
    runs = list(study.runs.only("id", "status"))
    outcome = study_status(runs)
    if outcome not in STUDY_OUTCOMES:  # still queued or running (a preempted run is re-queued)
        return None
    ideas = list(Idea.objects.filter(studies=study).select_related("area").order_by("study_memberships__position"))
    watchers = get_user_model().objects.filter(watched_ideas__in=ideas).values_list("pk", flat=True)
    # The newest attempt names this finish: a resumed run that ends again is a new event, a retry is not.
    last_attempt = Attempt.objects.filter(run__study=study).aggregate(last=Max("pk"))["last"]
    counts = Counter(run.status for run in runs)
    tally = ", ".join(f"{counts[status]} {status}" for status in RunStatus.values if counts[status])
    lines = [
        f"{study.label} {study.title} ({study.get_kind_display().lower()}) finished: {outcome}.",
        f"Runs: {tally}.",
    ]
    if ideas:
        lines.append("Ideas: " + ", ".join(f"{idea.key} {idea.title}" for idea in ideas))
    return event_for_viewers(
        kind=Message.Kind.STUDY_FINISHED, key=f"study-finished:{study.pk}:{last_attempt}",
        recipients={study.created_by_id, *watchers, *(idea.area.pic_id for idea in ideas)}, actor_id=None,
        areas=[idea.area for idea in ideas], subject=f"[{study.label}] {study.title} {outcome}", lines=lines,
        link=study.get_absolute_url(),
    )


RUN_FAILED = "run_failed"  # ref: the experiments.Attempt that ended failed


def publish_run_failed(attempt_id: int) -> None:
    """An attempt ended failed: its study's launcher hears at once, with the reason (after commit)."""
    events.publish(RUN_FAILED, attempt_id)


@events.source(RUN_FAILED)
def run_failed_event(attempt_id: int) -> Event | None:
    """To the study's launcher, while the run is still failed (a resume since makes it old news)."""
    attempt = Attempt.objects.select_related("run__study").filter(pk=attempt_id).first()
    if attempt is None or attempt.run.status != RunStatus.FAILED:
        return None
    run, study = attempt.run, attempt.run.study
    ideas = list(Idea.objects.filter(studies=study).select_related("area"))
    lines = [f"Run {run.public_id} of {study.label} {study.title} failed at step {run.step} (attempt {attempt.number}).",
             f"Reason: {attempt.reason or 'none recorded'}"]
    return event_for_viewers(
        kind=Message.Kind.RUN_FAILED, key=f"run-failed:{attempt.pk}", recipients={study.created_by_id},
        actor_id=None, areas=[idea.area for idea in ideas], subject=f"[{study.label}] run {run.public_id} failed",
        lines=lines, link=run.get_absolute_url(),
    )
