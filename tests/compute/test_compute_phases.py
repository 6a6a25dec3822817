"""Beat keeps the calendar: it creates the next cycle ahead of time and moves phases on schedule."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from compute import services, tasks
from compute.cycles import Phase
from compute.models import Cycle
from tests.support.processes import wait_until

BERLIN = ZoneInfo("Europe/Berlin")
# Cycles start every other Monday from 2024-01-01; 2025-03-24 is one, and its first Sunday is the DST switch.
CYCLE_START = datetime(2025, 3, 24, 0, 0, tzinfo=BERLIN)


def _phases() -> dict[str, str]:
    return {f"{cycle.first_day}": cycle.phase for cycle in Cycle.objects.order_by("start")}


def test_the_beat_task_creates_the_current_and_next_cycle_with_their_org_budgets(db, pool, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    with freeze_time(CYCLE_START + timedelta(days=2)):
        moves = tasks.advance_cycles()
    assert moves == []  # created in the right phase, nothing to move
    assert _phases() == {"2025-03-24": Phase.PUBLISHED, "2025-04-07": Phase.OPEN}
    current = Cycle.objects.get(start=CYCLE_START)
    # 8 GPUs × 335 h (the spring DST switch) × 0.85
    assert current.allocations.get(level="org").gpu_hours == pytest.approx(8 * 335 * 0.85)


def test_phases_move_on_schedule_and_the_next_cycle_appears_when_one_starts(db, pool, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    with freeze_time(CYCLE_START + timedelta(days=2)):
        tasks.advance_cycles()
    review_of_next = datetime(2025, 4, 4, 0, 0, tzinfo=BERLIN)  # three days before 2025-04-07
    with freeze_time(review_of_next - timedelta(seconds=1)):
        assert tasks.advance_cycles() == []
    with freeze_time(review_of_next):
        [move] = tasks.advance_cycles()
    assert (move["from_phase"], move["to_phase"]) == (Phase.OPEN, Phase.IN_REVIEW)
    with freeze_time(datetime(2025, 4, 7, 0, 0, tzinfo=BERLIN)):
        moves = tasks.advance_cycles()
    assert {(m["from_phase"], m["to_phase"]) for m in moves} == {(Phase.PUBLISHED, Phase.CLOSED), (Phase.IN_REVIEW, Phase.PUBLISHED)}
    assert _phases() == {"2025-03-24": Phase.CLOSED, "2025-04-07": Phase.PUBLISHED, "2025-04-21": Phase.OPEN}
    with freeze_time(datetime(2025, 4, 7, 0, 5, tzinfo=BERLIN)):
        assert tasks.advance_cycles() == []  # idempotent: a late or repeated tick changes nothing


def test_a_cycle_staff_published_early_is_not_moved_back(db, pool, settings, staff):
    settings.TIME_ZONE = "Europe/Berlin"
    with freeze_time(CYCLE_START + timedelta(days=2)):
        tasks.advance_cycles()
        upcoming = Cycle.objects.get(phase=Phase.OPEN)
        services.cycle_set_phase(cycle=upcoming, phase=Phase.PUBLISHED, actor=staff)
        assert tasks.advance_cycles() == []
    upcoming.refresh_from_db()
    assert upcoming.phase == Phase.PUBLISHED


def test_beat_runs_the_task_through_a_real_worker(celery_processes, pool):
    worker = celery_processes.worker(concurrency=1)
    beat = celery_processes.beat(env={"FLIGHTDECK_COMPUTE_SCHEDULE_SECONDS": "1"})
    wait_until(lambda: Cycle.objects.count() == 2, timeout=60, what="beat and worker to create the current and next cycle",
               alive=lambda: worker.is_running() and beat.is_running(), log=worker.log_path)
    current, upcoming = Cycle.objects.order_by("start")
    assert current.phase == Phase.PUBLISHED
    assert upcoming.phase in (Phase.OPEN, Phase.IN_REVIEW)  # in review during the last three days of a cycle
