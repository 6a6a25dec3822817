"""Review desk render time with 500 open requests in a cycle (and a previous cycle with usage to compare with).

1. A fresh database (SQLite in a temp dir unless DATABASE_URL is set) gets 20 areas, 500 ideas, two pools, the
   current cycle and the one before it (made by ``compute.services.cycle_ensure``), area grants in both, 20,000
   usage entries in the previous cycle and 500 open idea requests in the current one, a third of them scale-ups
   with evidence links to studies and runs (which do not exist: the evidence hook still looks them up). Rows are
   bulk-inserted: going through the services 20,000 times would only measure the seeding.
2. The desk is requested in-process through the full middleware stack (Django test client, signed-in reviewer,
   DEBUG off) as a reviewer opens it, sorted by age, filtered by area and on its last page; a few warm-up
   requests, then timed ones. Median and p95 per view are printed with the SQL query count of each, and the
   1-minute load average before and after (the machine is shared: say so with the numbers).
3. As a reference measured side by side in the same run, the cycle overview of the same cycle (whose p95 on a
   quiet machine is recorded in docs/benchmarks.md): the desk's median as a ratio of the overview's is what
   carries over between a loaded and a quiet machine.

    .venv/bin/python benchmarks/compute_review_desk.py [--requests 500] [--repeats 30]
"""
from __future__ import annotations

import argparse
import os
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

AREAS, IDEAS, USAGE = 20, 500, 20_000
TARGET_MS = 300


def _populate(requests: int) -> tuple[object, object]:
    """Build the data set; returns (a reviewer, the current cycle)."""
    from django.utils import timezone

    from compute import services
    from compute.cycles import Calendar
    from compute.models import Allocation, Request, UsageEntry

    rng = random.Random(0)
    org = build_org(areas=AREAS, ideas=IDEAS)
    users, reviewer, areas, ideas, pools = org.users, org.reviewer, org.areas, org.ideas, org.pools

    calendar = Calendar.from_settings()
    current_window = calendar.window_containing(timezone.now())
    previous, current = (services.cycle_ensure(window=w) for w in (calendar.window_before(current_window), current_window))
    grants_of = {}
    for cycle in (previous, current):
        orgs = {org.pool_id: org for org in cycle.allocations.filter(level="org")}
        grants_of[cycle.pk] = Allocation.objects.bulk_create([
            Allocation(cycle=cycle, pool=pool, level="area", parent=orgs[pool.pk], area=area, gpu_hours=Decimal(rng.randrange(500, 3000)))
            for pool in pools for area in areas
        ])
    hours = int(previous.window.hours)
    batch = []
    grants = grants_of[previous.pk]
    for n in range(USAGE):
        grant = grants[n % len(grants)]
        start = previous.start + timedelta(hours=rng.randrange(hours))
        batch.append(UsageEntry(cycle=previous, pool_id=grant.pool_id, area_id=grant.area_id, allocation_id=grant.pk,
                                attempt_key=f"bench-{n}", segment_start=start, segment_end=start + timedelta(hours=1), gpus=8, gpu_hours=Decimal(8)))
    UsageEntry.objects.bulk_create(batch, batch_size=2000)
    stages = ["pilot", "pilot", "scale-up", "integration"]
    Request.objects.bulk_create([
        Request(cycle=current, pool=pools[n % 2], area_id=ideas[n % IDEAS].area_id, idea=ideas[n % IDEAS], requester=users[n % AREAS],
                gpu_hours=Decimal(rng.randrange(10, 800)), justification="Pilot **positive** over 3 seeds; " * 5,
                stage=stages[n % 4], evidence_links=[f"/experiments/studies/{n}/", f"/experiments/runs/{n}/"] if n % 3 == 0 else [])
        for n in range(requests)
    ])
    return reviewer, current


def _measure(client, url: str, repeats: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200, url
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    query_count = len(queries)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return timings, query_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    configure_environment()
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    started = time.perf_counter()
    reviewer, cycle = _populate(args.requests)
    print(f"database: {connection.vendor}; seeded {args.requests} open requests, {USAGE:,} usage entries in the previous cycle, "
          f"{AREAS} areas, {IDEAS} ideas in {time.perf_counter() - started:.1f} s")
    client = Client()
    client.force_login(reviewer)
    base = f"/compute/cycles/{cycle.pk}/review/"
    views = {"desk": base, "sorted by age": base + "?sort=-age", "one area": base + "?area=area-03&stage=pilot",
             "last page": base + f"?page={(args.requests + 49) // 50}", "overview (reference)": f"/compute/cycles/{cycle.pk}/"}
    load_before = os.getloadavg()[0]
    results = {}
    for label, url in views.items():
        timings, queries = _measure(client, url, args.repeats)
        p95 = statistics.quantiles(timings, n=20)[-1]
        results[label] = (statistics.median(timings), p95, queries)
        print(f"{label:>20}: median {statistics.median(timings):6.1f} ms, p95 {p95:6.1f} ms, {queries} queries")
    load_after = os.getloadavg()[0]
    reference = results.pop("overview (reference)")
    worst_p95 = max(result[1] for result in results.values())
    unfiltered = {results[label][2] for label in ("desk", "sorted by age", "last page")}
    ok = len(unfiltered) == 1 and worst_p95 < TARGET_MS
    print(f"1-minute load average: {load_before:.1f} before, {load_after:.1f} after (2 cores)")
    print(f"desk median / overview median in this run: {results['desk'][0] / reference[0]:.2f}")
    print(f"{'PASS' if ok else 'FAIL'}: p95 {worst_p95:.1f} ms (target < {TARGET_MS} ms), query counts {sorted(unfiltered)} "
          f"(filtered: {results['one area'][2]}, the named area is looked up)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
