import pytest
from hypothesis import settings, HealthCheck
from hypothesis.stateful import run_state_machine_as_test
from tests.operations.test_state_machine import Lifecycles, make_world
from ideas.lifecycle import Status

def _run():
    Lifecycles.world = make_world()
    run_state_machine_as_test(Lifecycles, settings=settings(max_examples=30, stateful_step_count=20, deadline=None,
        derandomize=True, suppress_health_check=list(HealthCheck)))

def test_mutant_any_idea_move(db, monkeypatch):
    monkeypatch.setattr("ideas.services.allowed_targets", lambda status: tuple(Status.values))
    with pytest.raises(AssertionError) as e: _run()
    print("IDEA:", str(e.value)[:200])

def test_mutant_resume_succeeded(db, monkeypatch):
    from experiments import attempts, services
    from experiments.models import Run
    monkeypatch.setattr(services, "run_resume", lambda *, run, user: attempts.attempt_create(run=Run.objects.get(pk=run)) if not Run.objects.get(pk=run).is_live else None)
    with pytest.raises(AssertionError) as e: _run()
    print("RESUME:", str(e.value)[:200])

def test_mutant_no_room_check(db, monkeypatch):
    monkeypatch.setattr("compute.services._require_room", lambda *a, **k: None)
    with pytest.raises(AssertionError) as e: _run()
    print("ROOM:", str(e.value)[:200])

def test_mutant_double_claim(db, monkeypatch):
    from experiments import attempts
    from experiments.models import Attempt
    original = attempts.attempt_claim
    def claim(attempt_id, *, host, slot_ids, devices=1):
        Attempt.objects.filter(pk=attempt_id).update(state="queued") if host == "gpu-b" else None
        return original(attempt_id, host=host, slot_ids=slot_ids, devices=devices)
    monkeypatch.setattr(attempts, "attempt_claim", claim)
    with pytest.raises(AssertionError) as e: _run()
    print("CLAIM:", str(e.value)[:200])
