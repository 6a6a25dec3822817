"""Every URL of the site, walked as someone who must not see a restricted area: never its data.

One object of every kind is made in a restricted area, each carrying a unique marker string (titles, bodies,
comments, names, a log line). Every URL pattern is resolved from ``get_resolver()`` (admin and /api/v1/
included); a pattern's kwargs are filled from those objects — a kwarg this file cannot fill fails the test,
naming the pattern, so a new object URL cannot be added without being covered here. Then:

- object URLs (a kwarg names a restricted object): every method, as the outsider and anonymously, answers
  401/403/404/405 or a redirect to a sign-in page, and never carries a marker;
- list URLs and URLs of shared objects (cycles, baselines, tables): any non-5xx answer, never a marker;
- the write attempts change nothing in the database;
- positive controls: a member of the restricted area does see the markers, and the outsider sees their own.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from django.utils.regex_helper import normalize

from compute import services as compute_services
from compute.cycles import Calendar, Phase
from compute.models import Cycle, Pool
from experiments import services as experiment_services
from experiments.models import Run, Study
from ideas import services as idea_services
from ideas.lifecycle import Status
from ideas.models import Area, Idea
from tests.experiments.finished_runs import finish_study

pytestmark = pytest.mark.timeout(600)

# One marker per place a restricted area's data can surface; matched case-insensitively.
MARKERS = {
    "area name": "Qzvx-Area-Name",
    "area description": "qzvx-area-description",
    "idea title": "Qzvx-Idea-Title",
    "idea summary": "qzvx-idea-summary",
    "tag": "qzvx-tag",
    "comment": "qzvx-comment-body",
    "transition note": "qzvx-transition-note",
    "decision": "qzvx-decision-summary",
    "landed idea": "Qzvx-Landed-Title",
    "study title": "Qzvx-Study-Title",
    "mixed study title": "Qzvx-Mixed-Study",
    "run log": "qzvx-log-line",
    "request": "qzvx-request-justification",
    "review": "qzvx-review-comment",
    "grant note": "qzvx-grant-note",
    "inbox message": "qzvx-inbox-subject",
    "api token": "qzvx-token-name",
}
OWN_IDEA_TITLE = "Outsiders-Own-Idea"
METHODS = ("get", "head", "post", "put", "patch", "delete")
DENIED = {401, 403, 404, 405}
# Plausible bodies: enough to get past parsing, so a refusal cannot hide behind a 400.
FORM_BODY = {"body": "x", "title": "x", "summary": "x", "to_status": Status.TRIAGED, "to": Status.TRIAGED, "note": "x",
             "watching": "1", "volunteer": "1", "decision": "approve", "gpu_hours": "1", "comment": "x", "phase": "open",
             "pool": "h100", "kind": "ablation", "baseline": "tiny-fast", "seeds": "0", "max_steps": "4"}
JSON_BODY = {"body": "x", "title": "x", "to": Status.TRIAGED, "note": "", "decision": "approve", "gpu_hours": "1"}


@dataclass
class World:
    area: Area
    idea: Idea
    landed: Idea
    own_idea: Idea
    study: Study
    mixed_study: Study
    run: Run
    cycles: list[Cycle]
    request_id: int
    member: User
    outsider: User
    message_id: int
    token_id: int
    restricted: dict[str, list[str]] = field(default_factory=dict)
    shared: dict[str, list[str]] = field(default_factory=dict)


def _user(username: str, **flags) -> User:
    return User.objects.create_user(username=username, **flags)  # no password: hashing is slow, force_login is used


@pytest.fixture
def world(db, settings) -> World:
    settings.FLIGHTDECK_RATELIMITS = {**settings.FLIGHTDECK_RATELIMITS, "api_user": "100000/1m", "api_anon": "100000/1m"}
    staff, pic, member = _user("stella", is_staff=True), _user("pia"), _user("mira")
    outsider, reviewer = _user("olga"), _user("rita")
    reviewer.groups.add(Group.objects.get_or_create(name=settings.FLIGHTDECK_COMPUTE_REVIEWER_GROUP)[0])

    area = idea_services.area_create(slug="secret-area", name=MARKERS["area name"], description=MARKERS["area description"],
                                     pic=pic, by=staff, restricted=True)
    idea_services.area_volunteer(area=area, user=member)
    own_area = idea_services.area_create(slug="open-area", name="Open area", pic=outsider, by=staff)

    idea = idea_services.idea_create(submitter=member, area=area, title=MARKERS["idea title"], summary=MARKERS["idea summary"],
                                     recipe_patch={"moe.latent_size": 32}, tags=[MARKERS["tag"]])
    idea_services.comment_create(idea=idea, author=member, body=MARKERS["comment"])
    idea_services.idea_transition(idea=idea, to_status=Status.TRIAGED, by=pic, note=MARKERS["transition note"])
    landed = idea_services.idea_create(submitter=pic, area=area, title=MARKERS["landed idea"], summary="x")
    for status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION):
        idea_services.idea_transition(idea=landed, to_status=status, by=pic)
    idea_services.idea_transition(idea=landed, to_status=Status.LANDED, by=pic,
                                  decision=idea_services.DecisionInput(summary=MARKERS["decision"]))
    own_idea = idea_services.idea_create(submitter=outsider, area=own_area, title=OWN_IDEA_TITLE, summary="x",
                                         recipe_patch={"optim.weight_decay": 0.05})

    # Studies before any compute pool exists: launches are then not budgeted.
    experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides={})
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                             seeds=[0], max_steps=4, title=MARKERS["study title"])
    mixed = experiment_services.study_launch(user=staff, kind="integration", baseline="tiny-fast",
                                             ideas=[own_idea.key, idea.key], seeds=[0], max_steps=4,
                                             title=MARKERS["mixed study title"])
    finish_study(study, steps=4, eval_every=2)
    run = study.runs.order_by("id").last()
    (run.run_dir / "checkpoints" / "step-4").mkdir(parents=True)
    (run.run_dir / "attempt-1.log").write_text(f"step 4 {MARKERS['run log']}\n")

    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    calendar = Calendar.from_settings()
    now_window = calendar.window_containing(timezone.now())
    current = compute_services.cycle_ensure(window=now_window)
    open_cycle = compute_services.cycle_ensure(window=calendar.window_after(calendar.window_after(now_window)))
    assert (current.phase, open_cycle.phase) == (Phase.PUBLISHED, Phase.OPEN)
    request, _ = compute_services.request_submit(requester=member, cycle=open_cycle, pool=pool, area=area, idea=idea,
                                                 gpu_hours=10, justification=MARKERS["request"], stage="pilot")
    compute_services.request_review(request=request, reviewer=reviewer, decision="trim", gpu_hours=5,
                                    comment=MARKERS["review"])
    for grant_area, grant_idea in ((area, landed), (own_area, own_idea)):
        compute_services.allocation_set(cycle=current, pool=pool, area=grant_area, gpu_hours=100, actor=reviewer,
                                        note=MARKERS["grant note"] if grant_area == area else "")
        compute_services.allocation_set(cycle=current, pool=pool, area=grant_area, idea=grant_idea, gpu_hours=50,
                                        actor=reviewer)
        start = current.start + timedelta(hours=1)
        compute_services.usage_charge_segment(attempt_key=f"use-{grant_area.slug}", segment_start=start,
                                              segment_end=start + timedelta(hours=2), gpus=2, pool=pool,
                                              area=grant_area, idea=grant_idea)

    message = apps.get_model("inbox", "Message").objects.create(
        recipient=member, kind="idea_comment", subject=MARKERS["inbox message"], body=MARKERS["comment"],
        link=idea.get_absolute_url(), dedupe_key="walk-test")
    token = apps.get_model("accounts", "ApiToken").objects.create(owner=member, name=MARKERS["api token"],
                                                                   prefix="qq", key_hash="0" * 64)
    webhook = apps.get_model("inbox", "Webhook").objects.create(owner=member, name="member's hook",
                                                               url="https://hooks.example.org/member", secret="0" * 64)

    world = World(area=area, idea=idea, landed=landed, own_idea=own_idea, study=study, mixed_study=mixed, run=run,
                  cycles=[current, open_cycle], request_id=request.pk, member=member, outsider=outsider,
                  message_id=message.pk, token_id=token.pk)
    # kwarg name -> values naming restricted (or someone else's personal) objects.
    world.restricted = {
        "key": [idea.key, idea.key.lower(), landed.key],  # non-canonical spellings redirect when visible
        "slug": [area.slug],
        "study_id": [str(study.pk), str(mixed.pk)],
        "run_id": [str(run.pk)],
        "request_id": [str(request.pk)],
        "message_id": [str(message.pk)],
        "webhook_id": [str(webhook.pk)],  # someone else's: a 404 like a restricted object
        "object_id": [str(idea.pk)],  # admin: staff only, whatever the model
        "content_type_id": [str(ContentType.objects.get_for_model(Idea).pk)],
    }
    # kwarg name -> values naming objects everybody may see (they list restricted rows only filtered).
    world.shared = {
        "cycle_id": [str(cycle.pk) for cycle in world.cycles],
        "name": ["tiny-fast"],
        "app_label": ["ideas", "compute", "experiments"],
        "uidb64": ["MQ"],
        "token": ["set-password"],
        "url": ["no-such-page/"],  # the admin's catch-all
    }
    return world


# Kwargs whose meaning depends on the URL: (URL name, kwarg) -> what fills it.
BY_URL_NAME = {
    ("api_cycle_allocations", "pk"): "cycle",
    ("api_cycle_figures", "pk"): "cycle",
    ("api_request_review", "pk"): "request",
    ("api_request_detail", "pk"): "request",
    ("api_token_detail", "pk"): "token",
    ("token_revoke", "pk"): "token",
    ("auth_user_password_change", "id"): "user",
    ("cycle_csv", "table"): "cycle tables",
    ("budget_csv", "table"): "area tables",
    ("trends_csv", "table"): "trend tables",
}
# Every table a page offers as CSV, and one it does not.
TABLES = {"cycle tables": ["areas", "pools", "forecast", "burndown", "requests", "allocations", "granted_used", "refused", "landed", "nope"],
          "area tables": ["grants", "ideas", "nope"], "trend tables": ["per_area", "landed", "nope"]}


@dataclass(frozen=True)
class Pattern:
    route: str
    name: str | None
    formats: tuple[tuple[str, tuple[str, ...]], ...]  # (format string, its params) per nested level
    callback: object

    @property
    def kwargs(self) -> tuple[str, ...]:
        return tuple(param for _, params in self.formats for param in params)

    def url(self, values: dict[str, str]) -> str:
        return "/" + "".join(text % {name: values[name] for name in params} for text, params in self.formats)


def _walk(patterns, route: str = "", formats: tuple = ()) -> list[Pattern]:
    found = []
    for entry in patterns:
        text, params = normalize(entry.pattern.regex.pattern)[0]
        here = (route + str(entry.pattern), (*formats, (text, tuple(params))))
        if isinstance(entry, URLResolver):
            found += _walk(entry.url_patterns, *here)
        elif isinstance(entry, URLPattern):
            found.append(Pattern(here[0], entry.name, here[1], entry.callback))
    return found


def _values(world: World, pattern: Pattern) -> tuple[dict[str, list[str]], bool] | None:
    """Candidate values per kwarg, and whether any names a restricted object; None when one cannot be filled."""
    by_name = {"cycle": world.shared["cycle_id"], "request": [str(world.request_id)], "token": [str(world.token_id)],
               "user": [str(world.member.pk)], **TABLES}
    values, restricted = {}, False
    for kwarg in pattern.kwargs:
        if (pattern.name, kwarg) in BY_URL_NAME:
            kind = BY_URL_NAME[(pattern.name, kwarg)]
            values[kwarg], restricted = by_name[kind], restricted or kind in ("request", "token", "user")
        elif kwarg in world.restricted:
            values[kwarg], restricted = world.restricted[kwarg], True
        elif kwarg in world.shared:
            values[kwarg] = world.shared[kwarg]
        else:
            return None
    return values, restricted


def _urls(world: World, pattern: Pattern) -> list[str]:
    values, _ = _values(world, pattern)
    names = list(values)
    return [pattern.url(dict(zip(names, combo))) for combo in itertools.product(*(values[n] for n in names))]


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return (content.decode("utf-8", errors="replace") + " " + response.get("Location", "")).lower()


def _leaks(response, url: str = "") -> list[str]:
    """The markers in the response, but those the request itself carried (a search box shows its query)."""
    body, asked = _body(response), url.lower()
    return [what for what, marker in MARKERS.items() if marker.lower() in body and marker.lower() not in asked]


def _is_login_redirect(response) -> bool:
    if response.status_code not in (301, 302):
        return False
    path = urlsplit(response["Location"]).path
    return path.startswith((django_settings.LOGIN_URL, "/admin/login/", "/accounts/login/"))


def _request(client: Client, method: str, url: str, *, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    if method in ("get", "head"):
        return getattr(client, method)(url, headers=headers)
    if url.startswith("/api/"):
        return getattr(client, method)(url, data=json.dumps(JSON_BODY), content_type="application/json")
    if method == "post":
        return client.post(url, data=FORM_BODY, headers=headers)
    return getattr(client, method)(url, data="body=x", content_type="application/x-www-form-urlencoded")


def _snapshot() -> dict[str, list]:
    """Every row of every model but sessions (signing in writes those), to compare before and after."""
    return {model._meta.label: list(model.objects.order_by("pk").values_list())
            for model in apps.get_models() if model._meta.app_label != "sessions"}


def _clients(world: World) -> dict[str, Client]:
    outsider = Client(raise_request_exception=False)
    outsider.force_login(world.outsider)
    return {"outsider": outsider, "anonymous": Client(raise_request_exception=False)}


def test_every_url_pattern_can_be_filled_from_the_restricted_objects(world):
    unfilled = [f"{p.route} (name={p.name!r}, kwargs={', '.join(p.kwargs)})"
                for p in _walk(get_resolver().url_patterns) if p.kwargs and _values(world, p) is None]
    assert not unfilled, ("URL patterns with kwargs this test cannot fill; map them to an object in "
                          "tests/operations/test_object_permissions.py: " + "; ".join(unfilled))


def test_the_walk_builds_urls_that_resolve_to_their_own_views(world):
    for pattern in _walk(get_resolver().url_patterns):
        if _values(world, pattern) is None:
            continue
        for url in _urls(world, pattern):
            match = resolve(urlsplit(url).path)
            # Or an earlier pattern of the same route shadows it (the admin's login, sent to the rate-limited one).
            assert match.func == pattern.callback or match.route == pattern.route, f"{url} resolves to {match.route}"


def test_outsiders_and_anonymous_get_no_restricted_data_from_any_url(world):
    clients = _clients(world)
    patterns = [p for p in _walk(get_resolver().url_patterns)
                if _values(world, p) is not None and p.name != "api-schema"]  # the schema is built from code, not rows
    before = _snapshot()
    failures = []
    for pattern, (who, client) in itertools.product(patterns, clients.items()):
        _, restricted = _values(world, pattern)
        admin = pattern.route.startswith("admin/")  # one gate (staff only) in front of every admin view: GET, POST
        methods = ("get", "post") if admin else METHODS if pattern.kwargs else ("get",)  # lists: reads
        urls = _urls(world, pattern)
        for url, method in itertools.product(urls, methods):
            if method not in ("get", "head") and not restricted and url != urls[0]:
                continue  # a write to a shared object is refused the same whichever table or cycle it names
            for htmx in (False, True) if method == "get" and not admin else (False,):
                response = _request(client, method, url, htmx=htmx)
                what = f"{who} {method.upper()}{' htmx' if htmx else ''} {url} ({pattern.route}) -> {response.status_code}"
                if response.status_code >= 500 and response.status_code != 503:  # 503: /readyz without a worker
                    failures.append(f"{what}: server error")
                elif restricted and not (response.status_code in DENIED or _is_login_redirect(response)):
                    failures.append(f"{what}: expected 401/403/404/405 or a sign-in redirect")
                if leaked := _leaks(response):
                    failures.append(f"{what}: shows {', '.join(leaked)}")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])
    after = _snapshot()
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"refused writes changed these tables: {changed}"


SEARCHES = [
    "/ideas/?q={idea_title}", "/ideas/?area={slug}", "/ideas/?tag={tag}", "/ideas/?pic=pia", "/ideas/new/?area={slug}",
    "/api/v1/ideas/?q={idea_title}", "/api/v1/ideas/?area={slug}", "/api/v1/ideas/?tag={tag}",
    "/api/v1/usage/?area={slug}", "/compute/requests/new/?area={slug}", "/compute/?cycle={cycle}",
    "/experiments/?kind=ablation", "/experiments/?kind=integration", "/ideas/{own_key}", "/api/v1/ideas/{own_key}/",
]


def test_searches_filters_and_the_outsiders_own_pages_show_no_restricted_data(world):
    outsider = _clients(world)["outsider"]
    values = {"idea_title": MARKERS["idea title"], "slug": world.area.slug, "tag": MARKERS["tag"],
              "cycle": world.cycles[0].pk, "own_key": world.own_idea.key}
    for url in (template.format(**values) for template in SEARCHES):
        response = outsider.get(url)
        assert response.status_code < 500, url
        assert not _leaks(response, url), f"{url} shows {_leaks(response, url)}"


def test_the_outsider_sees_their_own_work_so_the_walk_can_fail(world):
    """Positive control on the outsider's side: their session works and their own rows are listed."""
    outsider = _clients(world)["outsider"]
    for url in ("/ideas/", f"/ideas/{world.own_idea.key}", "/api/v1/ideas/", "/compute/trends/"):
        response = outsider.get(url)
        assert response.status_code == 200, url
        assert OWN_IDEA_TITLE.lower() in _body(response) or "open area" in _body(response), url


MEMBER_PAGES = [
    ("/ideas/{key}", ["idea title", "comment", "transition note", "tag"]),
    ("/ideas/{landed_key}", ["decision"]),
    ("/areas/{slug}/", ["area name", "landed idea"]),
    ("/areas/", ["area name"]),
    ("/ideas/", ["idea title"]),
    ("/experiments/studies/{study}/", ["study title"]),
    ("/experiments/", ["study title", "mixed study title"]),
    ("/experiments/runs/{run}/", ["run log"]),
    ("/api/v1/ideas/{key}/", ["idea title"]),
    ("/api/v1/studies/{study}/", ["study title"]),
    ("/compute/trends/", ["area name", "landed idea"]),
    ("/inbox/", ["inbox message"]),
]


def test_a_member_of_the_restricted_area_sees_it(world):
    """Positive control: the markers the walk looks for really are on these pages for those allowed."""
    member = Client()
    member.force_login(world.member)
    for path, expected in MEMBER_PAGES:
        url = path.format(key=world.idea.key, landed_key=world.landed.key, slug=world.area.slug, study=world.study.pk,
                          run=world.run.pk)
        response = member.get(url)
        assert response.status_code == 200, url
        shown = _leaks(response)
        assert set(expected) <= set(shown), f"{url} shows {shown}, expected {expected}"
