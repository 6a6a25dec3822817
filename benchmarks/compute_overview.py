"""Cycle overview render time with 20 areas, 500 ideas, 12 past cycles and 100,000 usage entries.

1. A fresh database (SQLite in a temp dir unless DATABASE_URL is set) gets 20 areas, 500 ideas, two pools and
   13 cycles (the current one and 12 before it) with area and idea grants, requests and 100,000 usage entries
   spread over the cycles. Rows are bulk-inserted: going through the services 100,000 times would only
   measure the seeding.
2. The overview page of the current cycle and of the oldest one is requested in-process through the full
   middleware stack (Django test client, signed-in reviewer, DEBUG off): a few warm-up requests, then timed
   ones; median and p95 are printed with the SQL query count of each page, which must be equal.

    .venv/bin/python benchmarks/compute_overview.py [--entries 100000] [--repeats 30]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.compute_org import build_org, configure_environment  # noqa: E402

AREAS, IDEAS, PAST_CYCLES = 20, 500, 12
TARGET_MS = 300


def _populate(entries: int) -> tuple[object, list]:
    """Build the data set; returns (a reviewer, the cycles oldest first)."""
    from django.utils import timezone

    from compute import services
    from compute.cycles import Calendar
    from compute.models import Allocation, Request, UsageEntry
    from ideas.lifecycle import Status

    rng = random.Random(0)
    org = build_org(areas=AREAS, ideas=IDEAS, idea_statuses=list(Status.values))
    users, reviewer, areas, ideas, pools = org.users, org.reviewer, org.areas, org.ideas, org.pools

    calendar = Calendar.from_settings()
    windows = [calendar.window_containing(timezone.now())]
    for _ in range(PAST_CYCLES):
        windows.insert(0, calendar.window_before(windows[0]))
    cycles = [services.cycle_ensure(window=window) for window in windows]

    per_cycle = entries // len(cycles)
    for cycle in cycles:
        orgs = {org.pool_id: org for org in cycle.allocations.filter(level="org")}
        area_grants = Allocation.objects.bulk_create([
            Allocation(cycle=cycle, pool=pool, level="area", parent=orgs[pool.pk], area=area, gpu_hours=Decimal(rng.randrange(500, 3000)))
            for pool in pools for area in areas
        ])
        by_area = {(grant.pool_id, grant.area_id): grant for grant in area_grants}
        idea_grants = Allocation.objects.bulk_create([
            Allocation(cycle=cycle, pool=pools[0], level="idea", parent=by_area[(pools[0].pk, idea.area_id)], area_id=idea.area_id,
                       idea=idea, gpu_hours=Decimal(rng.randrange(20, 100)))
            for idea in rng.sample(ideas, 100)
        ])
        Request.objects.bulk_create([
            Request(cycle=cycle, pool=pools[n % 2], area=areas[n % AREAS], requester=users[n % AREAS],
                    gpu_hours=Decimal(rng.randrange(100, 3000)), justification="bench", stage="pilot",
                    status="approved" if n % 3 else "open")
            for n in range(40)
        ])
        grants = area_grants + idea_grants
        hours = int(cycle.window.hours)
        batch = []
        for n in range(per_cycle):
            grant = grants[n % len(grants)]
            start = cycle.start + timedelta(hours=rng.randrange(hours))
            batch.append(UsageEntry(
                cycle=cycle, pool_id=grant.pool_id, area_id=grant.area_id, idea_id=grant.idea_id, allocation=grant,
                attempt_key=f"bench-{cycle.pk}-{n}", segment_start=start, segment_end=start + timedelta(hours=1),
                gpus=8, gpu_hours=Decimal(8),
            ))
        UsageEntry.objects.bulk_create(batch, batch_size=2000)
    return reviewer, cycles


def _measure(client, url: str, repeats: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    query_count = len(queries)  # now: the next request's request_started signal empties the query log
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return timings, query_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    configure_environment()
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from compute.models import UsageEntry

    started = time.perf_counter()
    reviewer, cycles = _populate(args.entries)
    print(f"database: {connection.vendor}; seeded {UsageEntry.objects.count():,} usage entries, {len(cycles)} cycles, "
          f"{AREAS} areas, {IDEAS} ideas in {time.perf_counter() - started:.1f} s")
    client = Client()
    client.force_login(reviewer)
    results = {}
    for label, cycle in (("current cycle", cycles[-1]), ("oldest cycle", cycles[0])):
        timings, queries = _measure(client, f"/compute/cycles/{cycle.pk}/", args.repeats)
        p95 = statistics.quantiles(timings, n=20)[-1]
        results[label] = (statistics.median(timings), p95, queries)
        print(f"{label:>14}: median {statistics.median(timings):6.1f} ms, p95 {p95:6.1f} ms, {queries} queries "
              f"({cycle.usage.count():,} usage entries in the cycle)")
    queries = {result[2] for result in results.values()}
    worst_p95 = max(result[1] for result in results.values())
    ok = len(queries) == 1 and worst_p95 < TARGET_MS
    print(f"{'PASS' if ok else 'FAIL'}: p95 {worst_p95:.1f} ms (target < {TARGET_MS} ms), query counts {sorted(queries)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
