"""Demo data: the areas of a pretraining org, their PICs and volunteers, and ~60 ideas in every state.

Idempotent: existing users, areas and ideas (matched by title within the area) are left alone.
Everything is created through the services, as a user would, with notifications muted.
"""
import sys
from typing import TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ideas import notifications, services
from ideas.demo_data import AREAS, COMMENTS, DEMO_PASSWORD, IDEAS, VOLUNTEERS
from ideas.lifecycle import DECISION_REQUIRED, Status
from ideas.models import Area, Idea

# The moves that bring a new idea to each final state.
_PATHS: dict[str, list[str]] = {
    Status.SUBMITTED: [],
    Status.TRIAGED: [Status.TRIAGED],
    Status.IN_ABLATION: [Status.TRIAGED, Status.IN_ABLATION],
    Status.IN_INTEGRATION: [Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION],
    Status.LANDED: [Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION, Status.LANDED],
    Status.REJECTED: [Status.TRIAGED, Status.IN_ABLATION, Status.REJECTED],
    Status.PARKED: [Status.TRIAGED, Status.PARKED],
}
# Final states in rotation, so every state appears and early stages are the most common.
_FINAL_STATES = [
    Status.SUBMITTED, Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION, Status.LANDED,
    Status.REJECTED, Status.PARKED, Status.SUBMITTED, Status.IN_ABLATION, Status.TRIAGED,
]
_NOTES = {
    Status.TRIAGED: "In scope for this area; cheap enough for a nano ablation.",
    Status.IN_ABLATION: "Ablation launched: baseline vs. patch, 3 seeds.",
    Status.IN_INTEGRATION: "Ablation positive; adding it to the next integration study.",
    Status.PARKED: "Good idea, but blocked on infrastructure this cycle.",
}
_DECISIONS = {
    Status.LANDED: "Integration study over 3 seeds: validation loss **-0.7% ± 0.2%** vs. baseline, "
    "throughput unchanged. Landed in the main recipe.",
    Status.REJECTED: "Ablation over 3 seeds: difference to baseline **+0.1% ± 0.3%**, inside seed noise, "
    "at 9% lower throughput. Not worth the cost.",
}


def _user(username: str, password_hash: str, **flags: bool) -> AbstractBaseUser:
    first, _, last = username.partition(".")
    user, _ = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "password": password_hash,
            "email": f"{username}@flightdeck.example",
            "first_name": first.title(),
            "last_name": last.title(),
            **flags,
        },
    )
    return user


def _advance(idea: Idea, final: str, pic: AbstractBaseUser) -> None:
    for target in _PATHS[final]:
        decision = None
        if target in DECISION_REQUIRED:
            link = f"https://wandb.ai/flightdeck/ablations/groups/{idea.key.lower()}"
            decision = services.DecisionInput(summary=_DECISIONS[target], links=[link])
        services.idea_transition(idea=idea, to_status=target, by=pic, note=_NOTES.get(target, ""), decision=decision)


def _seed_ideas(users: dict[str, AbstractBaseUser], areas: dict[str, Area]) -> int:
    members = sorted(users)
    created = 0
    for index, (slug, title, summary, hypothesis, patch, tags, gpu_hours) in enumerate(IDEAS):
        area = areas[slug]
        if Idea.objects.filter(area=area, title=title).exists():
            continue
        submitter = users[members[(index * 5) % len(members)]]
        idea = services.idea_create(
            submitter=submitter, area=area, title=title, summary=summary, hypothesis=hypothesis,
            recipe_patch=patch, tags=tags, estimated_gpu_hours=gpu_hours,
        )
        for offset in range(index % 3):
            author = users[members[(index * 3 + offset * 5 + 1) % len(members)]]
            services.comment_create(idea=idea, author=author, body=COMMENTS[(index + offset) % len(COMMENTS)])
        _advance(idea, _FINAL_STATES[index % len(_FINAL_STATES)], area.pic)
        created += 1
    return created


def seed(out: TextIO | None = None) -> None:
    """Create the demo org; prints the sign-in names (all share DEMO_PASSWORD)."""
    out = out or sys.stdout
    # One hash for every demo user: hashing ~30 passwords separately would take seconds.
    password_hash = make_password(DEMO_PASSWORD)
    with transaction.atomic(), notifications.muted():
        admin = _user("admin", password_hash, is_staff=True, is_superuser=True)
        users = {pic: _user(pic, password_hash) for _, _, pic, _ in AREAS}
        users.update({name: _user(name, password_hash) for name, _ in VOLUNTEERS})
        areas = {}
        for slug, name, pic, description in AREAS:
            area = Area.objects.filter(slug=slug).first()
            if area is None:
                area = services.area_create(slug=slug, name=name, description=description, pic=users[pic], by=admin)
            areas[slug] = area
        for name, slugs in VOLUNTEERS:
            for slug in slugs:
                services.area_volunteer(area=areas[slug], user=users[name])
                # The demo's volunteers launch studies, so their PICs made them launchers.
                services.area_launcher_set(area=areas[slug], user=users[name], can_launch=True, by=admin)
        created = _seed_ideas(users, areas)

    out.write(f"Ideas demo: {len(areas)} areas, {created} new ideas ({Idea.objects.count()} in total).\n")
    out.write(f"Demo logins (password for all: {DEMO_PASSWORD}):\n")
    out.write("  admin  (staff, superuser)\n")
    for slug, name, pic, _ in AREAS:
        out.write(f"  {pic:<18} PIC of {name}\n")
    out.write(f"  volunteers (launchers): {', '.join(name for name, _ in VOLUNTEERS)}\n")
