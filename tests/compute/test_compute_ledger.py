"""The usage ledger and launch enforcement: charges are idempotent per attempt, launches reserve hours."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from compute import selectors, services
from compute.models import Allocation, LaunchHold, UsageEntry


@pytest.fixture
def idea_grant(current_cycle, pool, area, idea, pic, reviewer):
    """The routing area holds 100 GPU-h on h100 and gives 40 of them to the idea."""
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=100, actor=reviewer)
    return services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=40, actor=pic)


def _charge(cycle, area, idea, start_hours: float, end_hours: float, *, key="ATT-1", gpus=4, **extra):
    base = cycle.start + timedelta(days=1)
    return services.usage_charge_segment(
        attempt_key=key, segment_start=base + timedelta(hours=start_hours), segment_end=base + timedelta(hours=end_hours),
        gpus=gpus, pool="h100", area=area, idea=idea, **extra,
    )


def test_it_charges_gpus_times_wall_hours_to_the_ideas_grant(current_cycle, area, idea, idea_grant):
    [entry] = _charge(current_cycle, area, idea, 0, 1.5)
    assert entry.gpu_hours == Decimal("6.0000")  # 4 GPUs × 1.5 h
    assert entry.allocation == idea_grant and entry.cycle == current_cycle


def test_reprocessing_an_attempt_charges_nothing_twice(current_cycle, area, idea, idea_grant):
    _charge(current_cycle, area, idea, 0, 1)
    _charge(current_cycle, area, idea, 1, 2)
    assert _charge(current_cycle, area, idea, 0, 1) == []  # the same segment again
    [tail] = _charge(current_cycle, area, idea, 0, 3)  # the whole attempt at its end: only the last hour is new
    assert (tail.segment_start, tail.segment_end) == (current_cycle.start + timedelta(days=1, hours=2), current_cycle.start + timedelta(days=1, hours=3))
    assert selectors.allocations_for_cycle(current_cycle)[-1]["used"] == Decimal("12.00")  # 4 GPUs × 3 h, once
    assert UsageEntry.objects.filter(attempt_key="ATT-1").count() == 3


def test_a_late_earlier_segment_is_still_charged(current_cycle, area, idea, idea_grant):
    _charge(current_cycle, area, idea, 2, 3)
    [early] = _charge(current_cycle, area, idea, 0, 2.5)
    assert early.gpu_hours == Decimal("8.0000")  # only [0, 2) was new


def test_a_segment_across_the_cycle_end_is_split_between_cycles(current_cycle, area, idea, idea_grant):
    end = current_cycle.end
    entries = services.usage_charge_segment(
        attempt_key="ATT-9", segment_start=end - timedelta(hours=1), segment_end=end + timedelta(hours=2),
        gpus=2, pool="h100", area=area, idea=idea,
    )
    assert [(e.cycle.start, e.gpu_hours) for e in entries] == [(current_cycle.start, Decimal("2.0000")), (end, Decimal("4.0000"))]
    assert entries[1].allocation.level == Allocation.Level.AREA  # the idea has no grant in the next cycle


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"gpus": 0}, "gpus"), ({"end_hours": -1}, "segment_end"), ({"pool": "tpu"}, "pool")],
)
def test_bad_charges_name_the_field(current_cycle, area, idea, changes, field):
    kwargs = {"gpus": changes.get("gpus", 1)}
    if "pool" in changes:
        with pytest.raises(ValidationError) as error:
            services.usage_charge_segment(
                attempt_key="A", segment_start=current_cycle.start, segment_end=current_cycle.start + timedelta(hours=1),
                gpus=1, pool=changes["pool"], area=area, idea=idea,
            )
    else:
        with pytest.raises(ValidationError) as error:
            _charge(current_cycle, area, idea, 0, changes.get("end_hours", 1), **kwargs)
    assert field in error.value.message_dict


def test_a_launch_within_the_grant_is_reserved_and_the_next_one_is_refused_with_the_numbers(
    current_cycle, area, idea, idea_grant, member, pic, reviewer
):
    first = services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=30, launch_key="S-1")
    assert first.allowed and first.remaining == Decimal("40.00")
    second = services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=20, launch_key="S-2")
    assert not second.allowed
    assert (second.requested, second.remaining) == (Decimal("20.00"), Decimal("10.00"))
    assert second.can_grant_more[0] == pic.username and reviewer.username in second.can_grant_more
    assert "needs 20.00 GPU-h" in second.message and "10.00 GPU-h left" in second.message
    assert not LaunchHold.objects.filter(launch_key="S-2").exists()


def test_charges_draw_the_hold_down_and_a_release_frees_the_rest(current_cycle, area, idea, idea_grant, member):
    services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=30, launch_key="S-1")
    _charge(current_cycle, area, idea, 0, 2, launch_key="S-1")  # 8 GPU-h used of the 30 reserved
    assert selectors.allocation_launchable(idea_grant) == Decimal("10.00")  # 40 - 8 used - 22 still held
    services.launch_release(launch_key="S-1")
    assert selectors.allocation_launchable(idea_grant) == Decimal("32.00")


def test_the_same_launch_key_is_not_reserved_twice(current_cycle, area, idea, idea_grant, member):
    first = services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=30, launch_key="S-1")
    again = services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=30, launch_key="S-1")
    assert again.hold_id == first.hold_id and LaunchHold.objects.count() == 1


def test_an_idea_without_its_own_grant_launches_on_the_area_grant(current_cycle, area, idea, idea_grant, member):
    from ideas import services as idea_services

    sibling = idea_services.idea_create(submitter=member, area=area, title="Sibling", summary="s")
    decision = services.launch_authorize(user=member, area=area, idea=sibling, pool="h100", estimated_gpu_hours=60, launch_key="S-3")
    assert decision.allowed and decision.remaining == Decimal("60.00")  # 100 granted - 40 handed to the idea
    assert "Routing area grant" in decision.grant


def test_only_a_reviewer_overrides_and_the_override_is_logged(current_cycle, area, idea, idea_grant, member, reviewer):
    with pytest.raises(PermissionDenied):
        services.launch_authorize(user=member, area=area, idea=idea, pool="h100", estimated_gpu_hours=500, launch_key="S-4", override=True)
    decision = services.launch_authorize(
        user=reviewer, area=area, idea=idea, pool="h100", estimated_gpu_hours=500, launch_key="S-4", override=True,
        override_reason="deadline run",
    )
    assert decision.allowed and decision.overridden_by == reviewer.username
    hold = LaunchHold.objects.get(launch_key="S-4")
    assert (hold.overridden_by, hold.override_reason, hold.remaining_at_launch) == (reviewer, "deadline run", Decimal("40.00"))


def test_a_reviewer_within_budget_is_not_recorded_as_overriding(current_cycle, area, idea, idea_grant, reviewer):
    services.launch_authorize(user=reviewer, area=area, idea=idea, pool="h100", estimated_gpu_hours=5, launch_key="S-5", override=True)
    assert LaunchHold.objects.get(launch_key="S-5").overridden_by is None


def test_estimates_from_wall_time_and_throughput():
    assert services.launch_estimate_gpu_hours(gpus=8, wall_seconds=5400) == Decimal("12.00")
    assert services.launch_estimate_from_throughput(gpus=4, tokens=36_000_000, tokens_per_second=10_000) == Decimal("4.00")
    with pytest.raises(ValueError, match="tokens_per_second"):
        services.launch_estimate_from_throughput(gpus=4, tokens=1, tokens_per_second=0)
