"""The organisation both compute benchmarks start from: a migrated database with people, areas (one PIC each),
ideas and two pools, bulk-inserted (going through the services thousands of times would only measure seeding)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass


def configure_environment() -> None:
    """Settings are read at import, so the environment is fixed before Django starts."""
    os.environ.setdefault("FLIGHTDECK_VAR_DIR", tempfile.mkdtemp(prefix="flightdeck-bench-"))
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


@dataclass
class Org:
    users: list
    reviewer: object
    areas: list
    ideas: list
    pools: list


def build_org(*, areas: int, ideas: int, idea_statuses: list[str] | None = None) -> Org:
    """Migrate, then create ``areas`` areas led by their own PIC, ``ideas`` ideas spread over them (cycling
    through ``idea_statuses`` when given), a reviewer and the pools h100 and h200."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from compute.models import Pool
    from ideas.models import Area, Idea, IdeaKeyCounter, format_idea_key

    call_command("migrate", verbosity=0)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"user{n}", password="!") for n in range(areas + 1)])
    reviewer = users[-1]
    reviewer.groups.add(Group.objects.get_or_create(name="reviewers")[0])
    area_rows = Area.objects.bulk_create(
        [Area(slug=f"area-{n:02d}", name=f"Area {n:02d}", pic=users[n]) for n in range(areas)])
    extra = (lambda n: {"status": idea_statuses[n % len(idea_statuses)]}) if idea_statuses else (lambda n: {})
    idea_rows = Idea.objects.bulk_create([
        Idea(number=n, key=format_idea_key(n), title=f"Benchmark idea {n}", summary="bulk", area=area_rows[n % areas],
             submitter=users[n % areas], **extra(n))
        for n in range(1, ideas + 1)
    ])
    IdeaKeyCounter.objects.update_or_create(pk=1, defaults={"last_number": ideas})
    pools = [Pool.objects.create(name="h100", gpu_type="H100", gpu_count=256),
             Pool.objects.create(name="h200", gpu_type="H200", gpu_count=64)]
    return Org(users=users, reviewer=reviewer, areas=area_rows, ideas=idea_rows, pools=pools)
