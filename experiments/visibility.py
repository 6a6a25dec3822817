"""Which studies and runs a user may see: the reading policy of ``ideas.visibility`` carried over.

A study is hidden when any of its ideas is in a restricted area the user may not see. A run is visible
when any study containing it (its own, or the study of an arm that shares it) is visible. Both are one SQL
subquery (the runs explorer's variant reads the hidden studies first, one query), so lists stay at a constant
query count.
"""
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.types import User
from experiments.models import Arm, Run, Study, StudyIdea
from ideas.visibility import hidden_areas, sees_everything


def study_q(user: User, path: str = "") -> Q:
    """A filter keeping studies (or rows whose study is reached by ``path``, e.g. ``"study"``) ``user`` may see."""
    if sees_everything(user):
        return Q()
    hidden = StudyIdea.objects.filter(idea__area__in=hidden_areas(user)).values("study_id")
    return ~Q(**{f"{path or 'pk'}__in": hidden})


def visible_studies(user: User) -> QuerySet[Study]:
    return Study.objects.filter(study_q(user))


def run_q(user: User) -> Q:
    """A filter keeping the runs ``user`` may see: its own study visible, or an arm sharing it in one that is.
    One SQL expression, for looking up one run; lists of runs use :func:`run_list_q`."""
    if sees_everything(user):
        return Q()
    shared = Arm.runs.through.objects.filter(run_id=OuterRef("pk"), arm__study__in=visible_studies(user))
    return study_q(user, "study") | Q(Exists(shared))


def run_list_q(user: User) -> Q:
    """:func:`run_q` for lists across all runs (the runs explorer): the hidden studies are read first (one small
    query; usually there are none) and the filter is "not one of the hidden runs". With none hidden there is no
    filter at all, so a page ordered by id walks an index and reads 50 rows; run_q's "own study visible OR shared
    into a visible one" made PostgreSQL test every run of the table (5 s a page at 100,000 runs,
    benchmarks/experiments_runs_explorer.py)."""
    if sees_everything(user):
        return Q()
    hidden_studies = list(StudyIdea.objects.filter(idea__area__in=hidden_areas(user))
                          .values_list("study_id", flat=True).distinct())
    if not hidden_studies:
        return Q()
    shared_visibly = Arm.runs.through.objects.filter(run_id=OuterRef("pk")).exclude(arm__study_id__in=hidden_studies)
    hidden_runs = Run.objects.filter(study_id__in=hidden_studies).exclude(Exists(shared_visibly)).values("pk")
    return ~Q(pk__in=hidden_runs)


def visible_runs(user: User) -> QuerySet[Run]:
    return Run.objects.filter(run_q(user))


def can_view_study(user: User, study: Study) -> bool:
    return sees_everything(user) or visible_studies(user).filter(pk=study.pk).exists()


def can_view_run(user: User, run: Run) -> bool:
    return sees_everything(user) or visible_runs(user).filter(pk=run.pk).exists()
