"""Demo data for compute: pools, a `reviewers` group, four past cycles, the current one and the next one,
each with requests, reviews, PIC splits and usage, all made through the services.

Runs after the ideas and experiments seeders (it needs their areas and ideas). Idempotent: a cycle that
already has requests is left alone, and usage is keyed by attempt, so a re-run charges nothing twice.
"""
import random
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from compute import services
from compute.cycles import Calendar, CycleWindow, Phase
from compute.errors import ParentOverdrawn
from compute.models import Cycle, Pool, Request, Review
from ideas.demo_data import DEMO_PASSWORD
from ideas.lifecycle import Status
from ideas.models import Area, Idea

POOLS = [("h100", "H100 80GB SXM", 256), ("h200", "H200 141GB", 64)]
REVIEWERS = ["lead.ana", "lead.ben", "lead.chloe", "lead.dmitri"]
PAST_CYCLES = 4
ACTIVE_STATES = (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION, Status.LANDED)
STAGE_OF = {Status.TRIAGED: "pilot", Status.IN_ABLATION: "pilot", Status.IN_INTEGRATION: "integration", Status.LANDED: "integration"}
JUSTIFICATIONS = [
    "Pilot ablations came back **positive** at 1B scale (3 seeds); scaling to 8B to confirm before integration.",
    "Two ablation arms and a baseline, 3 seeds each, at the nano recipe. The last pilot showed a *-0.4%* loss delta.",
    "Integration study with the other landed ideas of the area: baseline, all-in and leave-one-out arms.",
    "Re-running the regression from last cycle with the fixed data order; see the linked study.",
]


def _reviewers(password_hash: str) -> list[AbstractBaseUser]:
    group, _ = Group.objects.get_or_create(name="reviewers")
    users = []
    for username in REVIEWERS:
        first, _, last = username.partition(".")
        user, _ = get_user_model().objects.get_or_create(
            username=username,
            defaults={"password": password_hash, "email": f"{username}@flightdeck.example", "first_name": last.title()},
        )
        user.groups.add(group)
        users.append(user)
    return users


def _run_attempts(cycle: Cycle, area: Area, pool: Pool, pick_idea, target: Decimal, until: datetime, label: str, rng: random.Random) -> None:
    """Attempts at random times before ``until`` until ``target`` GPU-h are used: 16-64 GPUs in 12-hour
    segments, or 8 GPUs in 4-hour ones for small targets (so an idea's usage lands near its grant)."""
    small = target < 800
    step = timedelta(hours=4 if small else 12)
    span_hours = int((until - cycle.start - step).total_seconds() // 3600)
    charged, attempt = Decimal(0), 0
    while span_hours > 0 and charged < target:
        attempt += 1
        idea, gpus = pick_idea(), 8 if small else rng.choice((16, 32, 64))
        start = cycle.start + timedelta(hours=rng.randint(0, span_hours))
        for segment in range(rng.randint(1, 3)):
            segment_start = start + segment * step
            if segment_start + step > until or charged >= target:
                break
            for entry in services.usage_charge_segment(
                attempt_key=f"demo-{cycle.first_day}-{pool.name}-{label}-{attempt}", segment_start=segment_start,
                segment_end=segment_start + step, gpus=gpus, pool=pool, area=area, idea=idea,
            ):
                charged += entry.gpu_hours


def _charge_usage(cycle: Cycle, grant, ideas: list[Idea], share: Decimal, until: datetime, rng: random.Random) -> None:
    """Use about ``share`` of each idea grant and of the rest of the area grant, pro rata to the part of the
    cycle that has passed; the rest goes to ideas without a grant of their own (or to the area itself)."""
    elapsed = Decimal(max(0, int((until - cycle.start).total_seconds()))) / 3600 / cycle.window.hours
    idea_grants = list(grant.children.select_related("idea"))
    own_hours = grant.gpu_hours - sum((child.gpu_hours for child in idea_grants), Decimal(0))
    granted = {child.idea_id for child in idea_grants}
    others = [idea for idea in ideas if idea.pk not in granted] + [None]
    for child in idea_grants:
        _run_attempts(cycle, grant.area, grant.pool, lambda child=child: child.idea, child.gpu_hours * share * elapsed, until, child.idea.key, rng)
    _run_attempts(cycle, grant.area, grant.pool, lambda: rng.choice(others), own_hours * share * elapsed, until, grant.area.slug, rng)


def _seed_cycle(window: CycleWindow, areas: list[Area], pools: list[Pool], reviewers: list, admin, now: datetime, rng: random.Random) -> bool:
    calendar = Calendar.from_settings()
    cycle = services.cycle_ensure(window=window, now=calendar.opens_at(window))  # created when it opened
    if cycle.requests.exists():
        return False
    if cycle.phase != Phase.OPEN:
        return False
    is_next = window.start > now
    for area in areas:
        ideas = [idea for idea in area.ideas.all() if idea.status in ACTIVE_STATES]
        for pool in pools[: 1 + (rng.random() < 0.3)]:
            amount = Decimal(rng.randrange(1500, 4000, 100)) if pool.name == "h100" else Decimal(rng.randrange(300, 1200, 50))
            area_request, _ = services.request_submit(
                requester=area.pic, cycle=cycle, pool=pool, area=area, gpu_hours=amount, stage="scale-up",
                justification=rng.choice(JUSTIFICATIONS), evidence_links=[f"/areas/{area.slug}/"],
            )
            for idea in ideas[:2]:
                services.request_submit(
                    requester=idea.submitter if idea.submitter_id != area.pic_id else area.pic, cycle=cycle, pool=pool,
                    area=area, idea=idea, gpu_hours=Decimal(rng.randrange(100, 600, 20)), stage=STAGE_OF[idea.status],
                    justification=rng.choice(JUSTIFICATIONS), evidence_links=[idea.get_absolute_url()],
                )
    if is_next:
        return True  # the next cycle's requests wait in the review queue
    services.cycle_set_phase(cycle=cycle, phase=Phase.IN_REVIEW, actor=admin)
    for index, request in enumerate(cycle.requests.select_related("area", "pool", "idea").order_by("pk")):
        reviewer = next(r for r in reviewers[index % len(reviewers):] + reviewers if r.pk != request.requester_id)
        roll = rng.random()
        try:
            if roll < 0.12:
                services.request_review(request=request, reviewer=reviewer, decision=Review.Decision.REFUSE, comment="Not this cycle: finish the pilot first.")
            elif roll < 0.4:
                trimmed = (request.gpu_hours * Decimal("0.6")).quantize(Decimal(1))
                services.request_review(request=request, reviewer=reviewer, decision=Review.Decision.TRIM, gpu_hours=trimmed, comment="Trimmed to fit the org budget.")
            else:
                services.request_review(request=request, reviewer=reviewer, decision=Review.Decision.APPROVE)
        except ParentOverdrawn:
            services.request_review(request=request, reviewer=reviewer, decision=Review.Decision.REFUSE, comment="The org budget is fully granted.")
    services.cycle_set_phase(cycle=cycle, phase=Phase.PUBLISHED, actor=admin)
    for area in areas:
        ideas = [idea for idea in area.ideas.all() if idea.status in ACTIVE_STATES]
        for grant in cycle.allocations.filter(level="area", area=area).select_related("pool", "area"):
            # The PIC hands a small extra share to one more idea, inside what the area has left.
            spare = grant.gpu_hours - sum(child.gpu_hours for child in grant.children.all())
            if len(ideas) > 2 and spare > 200:
                services.allocation_set(cycle=cycle, pool=grant.pool, area=area, idea=ideas[2], gpu_hours=Decimal(100), actor=area.pic)
            _charge_usage(cycle, grant, ideas, Decimal(str(round(rng.uniform(0.55, 1.0), 2))), min(now, window.end), rng)
    return True


def seed(out: TextIO | None = None) -> None:
    """Create pools, reviewers and cycles; prints the reviewers' sign-in names."""
    out = out or sys.stdout
    rng = random.Random(2026)
    now = timezone.now()
    calendar = Calendar.from_settings()
    with transaction.atomic():
        pools = [Pool.objects.get_or_create(name=name, defaults={"gpu_type": kind, "gpu_count": count})[0] for name, kind, count in POOLS]
        reviewers = _reviewers(make_password(DEMO_PASSWORD))
        admin = get_user_model().objects.filter(is_staff=True).order_by("pk").first()
        areas = list(Area.objects.select_related("pic").prefetch_related("ideas__submitter").order_by("name"))
        current = calendar.window_containing(now)
        windows = [current]
        for _ in range(PAST_CYCLES):
            windows.insert(0, calendar.window_before(windows[0]))
        windows.append(calendar.window_after(current))
        seeded = sum(_seed_cycle(window, areas, pools, reviewers, admin, now, rng) for window in windows)
        services.cycle_schedule_advance(now=now)
    out.write(
        f"Compute demo: {len(pools)} pools, {seeded} cycles seeded ({Cycle.objects.count()} in total), "
        f"{Request.objects.count()} requests.\n"
    )
    out.write(f"Compute reviewers (group 'reviewers', password {DEMO_PASSWORD}): {', '.join(REVIEWERS)}\n")
