"""export_all / import_all: a byte-identical round trip through a flushed PostgreSQL database."""
import io
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import Cycle, Pool, UsageEntry
from experiments.execution import monitor
from experiments import services as experiment_services
from experiments.execution.attempts import attempt_claim, attempt_finish, attempt_started
from experiments.models import Attempt, Metric, Study
from ideas import services as idea_services
from ideas.models import Idea, IdeaKeyCounter
from operations import backup


@pytest.fixture
def site(celery_processes) -> dict:
    """A little of everything, made through the services: people and groups, an area with a handover and a
    volunteer, ideas through their lifecycle with tags, watchers, comments and a decision, a budgeted ablation
    whose first attempt ran, logged metrics and was charged, and an open cycle with a reviewed request.

    celery_processes only keeps the suite's shared worker away: it must not start the study's runs while the
    test exports. The test is transactional (flush needs it), so the start messages really go to Redis.
    (The demo seeders would cover this too, but take minutes on a loaded 2-core machine.)
    """
    staff = User.objects.create_user("stella", is_staff=True)  # no passwords: hashing is slow
    pic, vic, rita = (User.objects.create_user(name) for name in ("pia", "vic", "rita"))
    reviewers = Group.objects.create(name="reviewers")
    reviewers.permissions.add(Permission.objects.get(codename="change_idea"))
    rita.groups.add(reviewers)
    staff.user_permissions.add(Permission.objects.get(codename="view_idea"))

    area = idea_services.area_create(slug="moe", name="MoE", pic=staff, by=staff)
    idea_services.area_hand_over(area=area, to_user=pic, by=staff, note="pia leads MoE now")
    area.refresh_from_db()
    idea_services.area_volunteer(area=area, user=vic)
    ideas = [idea_services.idea_create(submitter=vic, area=area, title=f"Idea {n}", summary="Why it may help.",
                                       recipe_patch={"moe.latent_size": 16 * n}, tags=["moe", f"t{n}"])
             for n in (1, 2, 3)]
    idea_services.idea_set_watching(idea=ideas[0], user=pic, watching=True)
    idea_services.comment_create(idea=ideas[0], author=pic, body="Worth an **ablation**.")
    idea_services.idea_transition(idea=ideas[0], to_status="triaged", by=pic)
    idea_services.idea_transition(idea=ideas[1], to_status="triaged", by=pic)
    idea_services.idea_transition(idea=ideas[1], to_status="rejected", by=pic,
                                  decision=idea_services.DecisionInput(summary="Inside seed noise."))

    pool = Pool.objects.create(name=settings.FLIGHTDECK_DEFAULT_POOL, gpu_type="H100 80GB", gpu_count=8)
    calendar = Calendar.from_settings()
    current = compute_services.cycle_ensure(window=calendar.window_containing(timezone.now()))
    compute_services.allocation_set(cycle=current, pool=pool, area=area, gpu_hours=100, actor=rita)
    compute_services.allocation_set(cycle=current, pool=pool, area=area, idea=ideas[0], gpu_hours=50, actor=pic)
    later = calendar.window_after(calendar.window_after(calendar.window_containing(timezone.now())))
    request, _ = compute_services.request_submit(requester=pic, cycle=compute_services.cycle_ensure(window=later),
                                                 pool=pool, area=area, idea=ideas[0], gpu_hours=40,
                                                 justification="Scale the ablation up.", stage="scale-up")
    compute_services.request_review(request=request, reviewer=rita, decision="approve")

    experiment_services.baseline_save(name="tiny", recipe="tiny-ci")
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny", ideas=[ideas[0].key],
                                             seeds=[1], max_steps=4)
    run = study.runs.order_by("pk").first()
    attempt = run.attempts.get()
    attempt_claim(attempt.pk, host="gpu-07", slot_ids=[0])
    attempt_started(attempt.pk, pid=4242, pgid=4242, code_revision="abc123")
    monitor.ingest(run, [{"step": step, "tokens": 64 * step, "train_loss": 5.0 - step / 7, "lr": 1e-3}
                         for step in range(1, 5)])
    attempt_finish(attempt.pk, host="gpu-07", state="succeeded", reason="done")
    # The counter runs ahead of the largest key, as after a deleted idea: its key must never come back.
    Idea.objects.filter(pk=ideas[2].pk).delete()
    return {"study": study, "idea_count": Idea.objects.count()}


def _export(path: Path) -> bytes:
    call_command("export_all", str(path), stdout=io.StringIO())
    return path.read_bytes()


@pytest.mark.timeout(400)
def test_a_backup_restores_into_a_flushed_database_byte_for_byte(site, tmp_path):
    first = _export(tmp_path / "first.jsonl")
    last_number = IdeaKeyCounter.objects.get().last_number
    assert Metric.objects.count() and UsageEntry.objects.count() and Cycle.objects.count()

    call_command("flush", interactive=False)  # also recreates content types and permissions, ids may differ
    assert not Idea.objects.exists() and not User.objects.exists()
    out = io.StringIO()
    call_command("import_all", str(tmp_path / "first.jsonl"), stdout=out)
    assert out.getvalue().startswith("Restored ")

    assert _export(tmp_path / "second.jsonl") == first
    assert Idea.objects.count() == site["idea_count"]
    assert Study.objects.get(pk=site["study"].pk).runs.count() == 2
    assert User.objects.get(username="stella").user_permissions.get().codename == "view_idea"

    # Sequences were reset and the key counter came back: new rows take fresh ids and the next key.
    admin = User.objects.get(username="stella")
    idea = idea_services.idea_create(submitter=admin, area=Idea.objects.first().area, title="After the restore",
                                     summary="A new idea.", recipe_patch={})
    assert idea.number == last_number + 1
    assert idea.key == f"IDEA-{last_number + 1:04d}"
    assert User.objects.create_user("newcomer").pk > admin.pk


def test_a_compressed_backup_in_a_directory_round_trips_too(site, tmp_path):
    call_command("export_all", str(tmp_path), stdout=io.StringIO())
    (written,) = tmp_path.glob("flightdeck-*.jsonl.gz")
    with pytest.raises(CommandError, match=r"the database is not empty \(.*pass --force"):
        call_command("import_all", str(written), stdout=io.StringIO())

    Idea.objects.update(title="changed after the backup")
    call_command("import_all", str(written), "--force", stdout=io.StringIO())
    assert not Idea.objects.filter(title="changed after the backup").exists()
    call_command("export_all", str(tmp_path / "again.jsonl.gz"), stdout=io.StringIO())
    assert (tmp_path / "again.jsonl.gz").read_bytes() == written.read_bytes()


def test_it_changes_nothing_when_the_counts_do_not_match(site, tmp_path):
    path = tmp_path / "backup.jsonl"
    _export(path)
    lines = path.read_text().splitlines()
    trailer = json.loads(lines[-1])
    trailer["counts"]["experiments.metric"] += 1
    path.write_text("\n".join([*lines[:-1], json.dumps(trailer)]) + "\n")
    before = Metric.objects.count()

    with pytest.raises(CommandError, match="count mismatch for experiments.metric: the trailer says"):
        call_command("import_all", str(path), "--force", stdout=io.StringIO())
    assert Metric.objects.count() == before
    assert Attempt.objects.filter(state="succeeded").count() == 1


def test_it_refuses_a_truncated_backup(site, tmp_path):
    path = tmp_path / "backup.jsonl"
    _export(path)
    path.write_text("\n".join(path.read_text().splitlines()[:-5]) + "\n")
    with pytest.raises(CommandError, match="ends without its trailer line"):
        call_command("import_all", str(path), "--force", stdout=io.StringIO())
    assert Metric.objects.exists()


def test_every_model_is_exported_or_excluded_with_a_reason():
    exported = {model._meta.label_lower for model in backup.exported_models()}
    excluded = set(backup.EXCLUDED)
    everything = {model._meta.label_lower for model in apps.get_models(include_auto_created=True)
                  if model._meta.managed and not model._meta.proxy}
    assert exported | excluded == everything
    assert not exported & excluded
    assert excluded <= everything, "EXCLUDED names a model that no longer exists"
    for must in ("auth.user", "auth.group", "auth.user_groups", "ideas.idea", "ideas.idea_tags", "ideas.ideakeycounter",
                 "experiments.metric", "experiments.arm_runs", "compute.cycle", "compute.usageentry"):
        assert must in exported


def test_models_come_after_the_models_they_point_to():
    order = [model._meta.label_lower for model in backup.exported_models()]
    for model in backup.exported_models():
        for field in model._meta.local_concrete_fields:
            target = field.related_model._meta.label_lower if field.is_relation else None
            if target in order and target != model._meta.label_lower:
                assert order.index(target) < order.index(model._meta.label_lower), (model, field.name)
