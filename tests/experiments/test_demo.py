"""The experiments demo seeder: it queues the demo studies for the worker instead of training them itself."""
import io

from experiments import demo
from experiments.models import Attempt, Metric, Run, RunStatus, Study
from ideas.demo import seed as seed_ideas


def test_seeding_queues_the_demo_studies_for_the_worker_and_trains_nothing(db, django_capture_on_commit_callbacks):
    seed_ideas(io.StringIO())
    out = io.StringIO()
    with django_capture_on_commit_callbacks() as start_messages:
        demo.seed(out)

    titles = set(Study.objects.values_list("title", flat=True))
    specs = demo._study_specs()
    assert titles == {demo._title(spec) for spec in specs} and len(titles) == len(specs) >= 3
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.QUEUED}
    assert set(Attempt.objects.values_list("state", flat=True)) == {RunStatus.QUEUED}
    assert not Attempt.objects.filter(started_at__isnull=False).exists()
    assert not Metric.objects.exists()  # nothing was trained or replayed in the seeding process
    # Each queued attempt's start message goes to the broker once the seeding commits.
    starts = [hook for hook in start_messages if "start_on_commit" in hook.__qualname__]
    assert len(starts) == Attempt.objects.count() == Run.objects.count()
    assert f"{Run.objects.count()} runs queued for the worker" in out.getvalue()


def test_seeding_again_adds_no_study_even_while_the_first_ones_still_train(db, django_capture_on_commit_callbacks):
    seed_ideas(io.StringIO())
    demo.seed(io.StringIO())
    Run.objects.filter(pk=Run.objects.order_by("pk").first().pk).update(status=RunStatus.RUNNING)
    counts = (Study.objects.count(), Run.objects.count(), Attempt.objects.count())

    out = io.StringIO()
    with django_capture_on_commit_callbacks() as start_messages:
        demo.seed(out)

    assert (Study.objects.count(), Run.objects.count(), Attempt.objects.count()) == counts
    assert start_messages == []
    assert "nothing to add" in out.getvalue()
