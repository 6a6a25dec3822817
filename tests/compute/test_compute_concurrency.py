"""Races on PostgreSQL: concurrent grants never sum past their parent, and concurrent launches never
reserve more than their grant holds."""
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from compute import services
from compute.errors import ParentOverdrawn
from compute.models import Allocation, LaunchHold
from ideas import services as idea_services

RACERS = 50


def _race(work: Callable[[int], object]) -> tuple[list, list[BaseException]]:
    """Run ``work(i)`` for i in 0..RACERS-1 in threads released together; returns results and errors."""
    start = threading.Barrier(RACERS)
    results, errors, lock = [], [], threading.Lock()

    def run(index: int) -> None:
        try:
            start.wait()
            outcome = work(index)
            with lock:
                results.append(outcome)
        except BaseException as error:  # collected: a thread cannot fail the test itself
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.fixture
def fifty_ideas(area, member):
    return [idea_services.idea_create(submitter=member, area=area, title=f"Racer {n}", summary="race") for n in range(RACERS)]


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_approvals_never_exceed_the_org_budget(open_cycle, pool, area, fifty_ideas, member, reviewer):
    org = open_cycle.allocations.get(level="org")  # 2284.80 GPU-h: room for 38 grants of 60
    requests = [
        services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, idea=idea, gpu_hours=60,
                                justification="race", stage="pilot")[0]
        for idea in fifty_ideas
    ]

    def approve(index: int) -> str:
        try:
            services.request_review(request=requests[index], reviewer=reviewer, decision="approve")
        except ParentOverdrawn:
            return "overdrawn"
        return "granted"

    results, errors = _race(approve)
    assert errors == []
    assert results.count("granted") == 38 and results.count("overdrawn") == 12
    areas_total = Allocation.objects.filter(parent=org).aggregate(total=Sum("gpu_hours"))["total"]
    ideas_total = Allocation.objects.filter(level="idea", cycle=open_cycle).aggregate(total=Sum("gpu_hours"))["total"]
    assert areas_total == ideas_total == Decimal(38 * 60) <= org.gpu_hours


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_pic_splits_never_exceed_the_area_grant(current_cycle, pool, area, fifty_ideas, pic, reviewer):
    area_grant = services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=255, actor=reviewer)

    def split(index: int) -> str:
        try:
            services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=fifty_ideas[index], gpu_hours=10, actor=pic)
        except ParentOverdrawn:
            return "overdrawn"
        return "granted"

    results, errors = _race(split)
    assert errors == []
    assert results.count("granted") == 25
    assert Allocation.objects.filter(parent=area_grant).aggregate(total=Sum("gpu_hours"))["total"] == Decimal(250)


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_launches_never_overdraw_their_grant(current_cycle, pool, area, idea, pic, member, reviewer):
    services.allocation_set(cycle=current_cycle, pool=pool, area=area, gpu_hours=200, actor=reviewer)
    grant = services.allocation_set(cycle=current_cycle, pool=pool, area=area, idea=idea, gpu_hours=100, actor=pic)

    def launch(index: int):
        return services.launch_authorize(user=member, area=area, idea=idea, pool=pool, estimated_gpu_hours=7, launch_key=f"race-{index}")

    decisions, errors = _race(launch)
    assert errors == []
    assert sum(decision.allowed for decision in decisions) == 14  # 14 × 7 = 98 ≤ 100 < 15 × 7
    held = LaunchHold.objects.filter(allocation=grant).aggregate(total=Sum("estimated_hours"))["total"]
    assert held == Decimal(98) <= grant.gpu_hours
    refused = [decision for decision in decisions if not decision.allowed]
    assert {decision.remaining for decision in refused} == {Decimal("2.00")}
