"""The rendered body of the idea list, cached in Redis under a version that changes whenever anything the list
can show changes.

What the list shows comes from ideas, their tags, areas (name, slug, PIC, restriction), memberships and the
usernames of PICs and submitters. Every save or delete of those rows, and every change of an idea's tags,
replaces the version with a fresh random token (when it happens and again when it commits), so a cached body
is never served after an edit. The
receivers are model signals rather than calls in each service on purpose: they also see the admin's edits,
which go through no service, and a new service cannot forget them.

Who may see what is part of the key, not of the version: the key holds the viewer's visible areas
(``selectors.area_filter_choices``, which the filter form needs anyway; cached per viewer under the version),
and visible ideas and tags are a function of those areas alone (``ideas.visibility``). Two people who see the same areas see the same list; anyone else
gets a different entry. The body holds nothing personal (the nav bar, CSRF token and messages are rendered per
request around it).

Redis down means no caching, never a failed page. A version bump lost while Redis is unreachable could leave
an old entry behind if Redis comes back with its data, so entries also expire after ``ENTRY_SECONDS``.
"""
from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Sequence

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone, translation
from redis import RedisError

from core.types import User
from ideas.models import Area, AreaMembership, Idea, Tag

VERSION_KEY = "ideas:list:version"
ENTRY_SECONDS = 300


def _bump() -> None:
    with contextlib.suppress(RedisError):  # Redis away: nothing can be served from it either (see module doc)
        cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def list_changed() -> None:
    """Make every cached list body unreachable now and again once the current transaction commits: a page
    rendered in between still read the old rows and may have been stored under the first new version."""
    _bump()
    transaction.on_commit(_bump)


def _current_version() -> str | None:
    version = cache.get(VERSION_KEY)
    if version is None:
        # First use, or the key was lost: a fresh random token can never match an entry from before.
        cache.add(VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(VERSION_KEY)
    return version


def _visible_area_choices(version: str, user: User, compute: Callable[[], Sequence[tuple]]) -> Sequence[tuple]:
    """The viewer's visible areas, itself cached under the version: every write that can change who sees which
    area (areas, memberships, users) replaces it. A hit is one Redis read instead of the visibility subquery,
    the most expensive query of a cached page."""
    key = f"ideas:list:areas:{version}:{user.pk}:{int(user.is_active)}{int(user.is_staff)}"
    try:
        areas = cache.get(key)
    except RedisError:
        return compute()
    if areas is None:
        areas = compute()
        with contextlib.suppress(RedisError):
            cache.set(key, areas, ENTRY_SECONDS)
    return areas


def cached_body(*, user: User, variant: str, query: str, area_choices: Callable[[], Sequence[tuple]],
                render: Callable[[Sequence[tuple]], str]) -> str:
    """``render(areas)``'s result for ``user``'s visible ``areas`` (``area_choices()``), from the cache when an
    entry for this version, viewer visibility, page variant (full page or htmx fragment) and query string
    exists; rendered (and stored) otherwise."""
    try:
        version = _current_version()
    except RedisError:
        version = None
    if version is None:
        return render(area_choices())
    areas = _visible_area_choices(version, user, area_choices)
    context = (version, tuple(areas), variant, query, translation.get_language(),
               timezone.get_current_timezone_name())
    key = "ideas:list:body:" + hashlib.sha256(repr(context).encode()).hexdigest()[:40]
    try:
        body = cache.get(key)
    except RedisError:
        return render(areas)
    if body is None:
        body = render(areas)
        with contextlib.suppress(RedisError):
            cache.set(key, body, ENTRY_SECONDS)
    return body


def _on_row_change(sender, **kwargs) -> None:
    list_changed()


def _on_user_save(sender, update_fields=None, **kwargs) -> None:
    # Signing in saves last_login only, which the list does not show; anything else may be a rename.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    list_changed()


def connect() -> None:
    """Called once from ``IdeasConfig.ready``."""
    for model in (Idea, Area, AreaMembership, Tag):
        post_save.connect(_on_row_change, sender=model, dispatch_uid=f"ideas-list-cache-save-{model.__name__}")
        post_delete.connect(_on_row_change, sender=model, dispatch_uid=f"ideas-list-cache-delete-{model.__name__}")
    m2m_changed.connect(_on_row_change, sender=Idea.tags.through, dispatch_uid="ideas-list-cache-tags")
    user = get_user_model()
    post_save.connect(_on_user_save, sender=user, dispatch_uid="ideas-list-cache-user-save")
    post_delete.connect(_on_row_change, sender=user, dispatch_uid="ideas-list-cache-user-delete")
