"""The runs explorer's query: every run a user may see, filtered by study, idea, area, baseline, status,
launcher, tag, resolved config values and words, ordered by a field, a final metric or a config value.
The page and ``GET /api/v1/runs/`` share it, so they accept the same parameters and give the same errors.

It stays fast at 100k runs because nothing here reads Metric rows or joins per row: config values and final
metrics are JSON columns of the run (``Run.config_flat``, ``Run.final_metrics``); a config filter is jsonb
containment on PostgreSQL (answered by a GIN index) and a JSON key lookup elsewhere (SQLite for ``make run``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.fields.json import KeyTransform
from django.http import Http404

from core.types import User
from experiments.composition import same_value
from experiments.models import Run, RunStatus, RunTag, StudyIdea
from experiments.visibility import run_list_q

CONFIG_PREFIX = "config."
FINAL_PREFIX = "final."
# Orderable run fields: query name → model field.
ORDER_FIELDS = {
    "id": "id", "created_at": "created_at", "started_at": "started_at", "finished_at": "finished_at",
    "status": "status", "step": "step", "tokens": "tokens", "tokens_per_s": "tokens_per_s",
    "gpu_hours": "gpu_hours", "seed": "seed", "study": "study_id",
}
NULLABLE_FIELDS = ("started_at", "finished_at", "tokens_per_s")
FILTERS = ("study", "idea", "area", "baseline", "status", "launcher", "tag", "search")
PARAMETERS = (*FILTERS, "ordering")
MAX_SEARCH_WORDS = 8
_KEY = re.compile(r"^[\w/.\-]{1,64}$")  # metric names and dotted config keys ('val_loss/wiki', 'moe.top_k')


def is_key(text: str) -> bool:
    """Whether ``text`` can be a metric name or a dotted config key."""
    return bool(_KEY.match(text))


@dataclass(frozen=True)
class RunQuery:
    """Validated explorer parameters; empty values mean "no filter"."""

    study: int | None = None
    idea: str = ""
    area: str = ""
    baseline: str = ""
    status: tuple[str, ...] = ()
    launcher: str = ""
    tag: str = ""
    search: str = ""  # words, each matched anywhere in the run id, study title, ideas' titles and keys, notes
    config: dict[str, Any] = field(default_factory=dict)  # dotted key → value (JSON-typed)
    ordering: str = "-id"

    @property
    def is_filtered(self) -> bool:
        return any((self.study, self.idea, self.area, self.baseline, self.status, self.launcher, self.tag,
                    self.search, self.config))


def parse_config_value(text: str) -> Any:
    """A query-string value as the JSON value it spells (``0.002`` → float, ``true`` → bool, ``8`` → int);
    anything that is not JSON is a string (``bpe``)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def parse_run_query(params: Mapping[str, Any], *, ignore: tuple[str, ...] = ("page",)) -> RunQuery:
    """Parse query parameters (a QueryDict or dict). Raises ValidationError keyed by the offending parameter:
    unknown parameters are refused by name rather than silently ignored (a typo would show every run)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for name in params:
        raw = params.get(name, "")
        text = raw.strip() if isinstance(raw, str) else str(raw)
        if name in ignore:
            continue
        if name.startswith(CONFIG_PREFIX):
            key = name[len(CONFIG_PREFIX):]
            if not _KEY.match(key):
                errors[name] = f"{name!r}: config filters look like config.<dotted key>=<value>, e.g. config.optim.lr=0.002"
            else:
                config[key] = parse_config_value(text)
        elif name not in PARAMETERS:
            allowed = ", ".join(PARAMETERS)
            errors[name] = f"unknown parameter {name!r}; allowed: {allowed}, config.<dotted key> (and page)"
        elif text:
            values[name] = text
    if "study" in values:
        if not values["study"].isdigit():
            errors["study"] = f"study must be a study id (a whole number), got {values['study']!r}"
        else:
            values["study"] = int(values["study"])
    if "status" in values:
        statuses = tuple(part.strip() for part in values["status"].split(",") if part.strip())
        if bad := [part for part in statuses if part not in RunStatus.values]:
            errors["status"] = f"unknown status {bad[0]!r}; allowed: {', '.join(RunStatus.values)}"
        values["status"] = statuses
    if "ordering" in values and (problem := _ordering_error(values["ordering"])):
        errors["ordering"] = problem
    if "search" in values and len(values["search"].split()) > MAX_SEARCH_WORDS:
        errors["search"] = f"search takes at most {MAX_SEARCH_WORDS} words"
    if errors:
        raise ValidationError(errors)
    return RunQuery(**values, config=config)


def _ordering_error(ordering: str) -> str:
    name = ordering.removeprefix("-")
    if name in ORDER_FIELDS:
        return ""
    for prefix in (FINAL_PREFIX, CONFIG_PREFIX):
        if name.startswith(prefix) and _KEY.match(name[len(prefix):]):
            return ""
    fields = ", ".join(ORDER_FIELDS)
    return f"cannot order by {ordering!r}; use one of {fields}, final.<metric> or config.<dotted key>, '-' for descending"


def _ordering(ordering: str) -> list[OrderBy]:
    descending = ordering.startswith("-")
    name = ordering.removeprefix("-")
    if name in ORDER_FIELDS:
        expression = F(ORDER_FIELDS[name])
    elif name.startswith(FINAL_PREFIX):
        expression = KeyTransform(name[len(FINAL_PREFIX):], "final_metrics")
    else:
        expression = KeyTransform(name[len(CONFIG_PREFIX):], "config_flat")
    tie_break = F("id").desc() if descending else F("id").asc()
    if name in ORDER_FIELDS and name not in NULLABLE_FIELDS:
        # Plain ASC/DESC, so PostgreSQL walks the index (an explicit NULLS LAST on a descending scan would not).
        return [expression.desc() if descending else expression.asc(), tie_break]
    # Runs without the value (a metric not logged yet) go last either way; the id breaks ties so pages are stable.
    return [expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True), tie_break]


def _config_q(key: str, value: Any) -> Q:
    if connection.features.supports_json_field_contains:
        return Q(config_flat__contains={key: value})
    return Q(**{f"config_flat__{key}": value}) if "__" not in key else Q(pk__in=[])


def _search_q(words: list[str]) -> Q:
    """Every word must appear in at least one of the run id, the study title, the titles and keys of the
    study's ideas or the notes."""
    query = Q()
    for word in words:
        in_idea = StudyIdea.objects.filter(Q(idea__title__icontains=word) | Q(idea__key__icontains=word))
        query &= (Q(public_id__icontains=word) | Q(study__title__icontains=word) | Q(notes__icontains=word)
                  | Q(study_id__in=in_idea.values("study_id")))
    return query


def runs_explore(*, user: User, query: RunQuery) -> QuerySet[Run]:
    """The runs ``user`` may see that match ``query``, ordered, with study, baseline and launcher joined and arms
    and tags prefetched: a page of them costs a fixed number of queries whatever its size."""
    runs = Run.objects.filter(run_list_q(user))
    if query.study is not None:
        runs = runs.filter(study_id=query.study)
    if query.idea:
        runs = runs.filter(study_id__in=StudyIdea.objects.filter(idea__key=query.idea).values("study_id"))
    if query.area:
        runs = runs.filter(study_id__in=StudyIdea.objects.filter(idea__area__slug=query.area).values("study_id"))
    if query.baseline:
        name, _, version = query.baseline.partition("@")
        runs = runs.filter(study__baseline__name=name)
        if version:
            runs = runs.filter(study__baseline__version=int(version)) if version.isdigit() else runs.none()
    if query.status:
        runs = runs.filter(status__in=query.status)
    if query.launcher:
        runs = runs.filter(study__created_by__username=query.launcher)
    if query.tag:
        runs = runs.filter(Exists(RunTag.objects.filter(run=OuterRef("pk"), name=query.tag)))
    for key, value in query.config.items():
        runs = runs.filter(_config_q(key, value))
    if query.search:
        runs = runs.filter(_search_q(query.search.split()))
    return (runs.select_related("study__baseline", "study__created_by")
            .prefetch_related("arms", "tags")
            .defer("config", "overrides")  # the flat copy is what the explorer reads
            .order_by(*_ordering(query.ordering)))


class RunPaginator(Paginator):
    """Pages of ``runs_explore`` found by id first: the filtered, ordered scan reads only ids, and only the
    page's 50 runs are then read with their joins and JSON. Otherwise a sort on a config key or a deep page
    carries every row's wide columns (config, metrics, study, baseline) through the sort or the offset, which
    at 100k runs was 2-3× the time. The second read repeats the query restricted to the page's ids, so the
    order and the prefetches stay those of the queryset; it costs one more (small) query per page."""

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        return self._get_page(list(self.object_list.filter(pk__in=ids)), number, self)


MAX_COMPARE = 20


def parse_run_ids(text: str) -> list[int]:
    """``"1,2,3"`` → [1, 2, 3] (order kept, repeats dropped). Raises ValidationError on ``ids``."""
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not parts or any(not part.isdigit() for part in parts):
        raise ValidationError({"ids": f"ids must be run ids separated by commas, e.g. ids=1,2,3; got {text!r}"})
    ids = list(dict.fromkeys(int(part) for part in parts))
    if len(ids) > MAX_COMPARE:
        raise ValidationError({"ids": f"compare takes at most {MAX_COMPARE} runs, got {len(ids)}"})
    return ids


@dataclass(frozen=True)
class Comparison:
    runs: list[Run]
    config_diff: dict[str, list[Any]]  # dotted key → value per run, only keys whose values differ
    final: dict[str, list[float | None]]  # metric → final value per run


def runs_compare(*, user: User, ids: list[int]) -> Comparison:
    """The runs in the order asked, the config keys that differ between them and their final metrics side by
    side. Http404 naming the first id that is unknown or hidden (the two look the same)."""
    found = {run.pk: run for run in runs_explore(user=user, query=RunQuery()).filter(pk__in=ids)}
    if missing := [run_id for run_id in ids if run_id not in found]:
        raise Http404(f"no run {missing[0]}")
    runs = [found[run_id] for run_id in ids]
    keys = sorted(set().union(*(run.config_flat for run in runs)))
    diff = {}
    for key in keys:
        values = [run.config_flat.get(key) for run in runs]
        if any(not same_value(values[0], value) for value in values[1:]):
            diff[key] = values
    metrics = sorted(set().union(*(run.final_metrics for run in runs)))
    final = {name: [run.final_metrics.get(name) for run in runs] for name in metrics}
    return Comparison(runs, diff, final)
