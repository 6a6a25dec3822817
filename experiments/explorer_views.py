"""The runs explorer and compare pages: parse the query string, call ``experiments.explorer``, render.
Columns are chosen in the query string too, so every view of the table is a link that can be shared."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from experiments import explorer, run_charts
from experiments.models import RunStatus

RUNS_PER_PAGE = 50
# Fixed columns: query name → header. `sort` is the ordering the header toggles ("" = not sortable).
COLUMNS = {
    "study": ("Study", "study"), "arms": ("Arms / ideas", ""), "baseline": ("Baseline", ""),
    "status": ("Status", "status"), "progress": ("Step", "step"), "tokens": ("Tokens", "tokens"),
    "wall": ("Wall", ""), "gpu_hours": ("GPU-h", "gpu_hours"), "started": ("Started", "started_at"),
    "launcher": ("Launcher", ""), "tags": ("Tags", ""),
}
NUMERIC_COLUMNS = ("progress", "tokens", "wall", "gpu_hours")
DEFAULT_COLUMNS = ("study", "arms", "baseline", "status", "progress", "tokens", "wall", "gpu_hours", "started")
DEFAULT_METRICS = ("val_loss", "train_loss", "tokens_per_s", "peak_mem_mb")
PAGE_ONLY = ("page", "cols", "metrics", "config_cols", "where", "columns")


@dataclass(frozen=True)
class Header:
    label: str
    ordering: str  # "" when not sortable
    kind: str  # "fixed", "metric" or "config"
    name: str

    @property
    def numeric(self) -> bool:
        return self.kind != "fixed" or self.name in NUMERIC_COLUMNS


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in text.split(",") if explorer.is_key(part.strip())))


def _query_params(request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
    """The explorer filters from the query string: its own parameters, ``config.<key>`` ones and the form's
    ``where`` box (``optim.lr=0.002 train.seed=0``). Returns (parameters, errors keyed by the box)."""
    params = {name: request.GET.get(name, "") for name in request.GET if name not in PAGE_ONLY}
    errors = {}
    for where in " ".join(request.GET.getlist("where")).split():
        key, sep, value = where.partition("=")
        if not sep or not key.strip():
            errors["where"] = f"{where!r}: write a config filter as <dotted key>=<value>, e.g. optim.lr=0.002"
            continue
        params[explorer.CONFIG_PREFIX + key.strip()] = value.strip()
    return params, errors


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    """All runs the user may see, filtered, sorted and paginated on the server."""
    params, errors = _query_params(request)
    try:
        query = explorer.parse_run_query(params)
    except ValidationError as error:
        errors.update({name: " ".join(messages) for name, messages in error.message_dict.items()})
        query = explorer.RunQuery()
    chosen = [name for name in request.GET.getlist("cols") if name in COLUMNS] if "columns" in request.GET else []
    columns = chosen or list(DEFAULT_COLUMNS)
    metrics = _names(request.GET.get("metrics", ",".join(DEFAULT_METRICS)))
    config_keys = _names(request.GET.get("config_cols", ""))
    headers = ([Header(COLUMNS[name][0], COLUMNS[name][1], "fixed", name) for name in columns]
               + [Header(name, explorer.FINAL_PREFIX + name, "metric", name) for name in metrics]
               + [Header(key, explorer.CONFIG_PREFIX + key, "config", key) for key in config_keys])
    page = explorer.RunPaginator(explorer.runs_explore(user=request.user, query=query), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(run, [run.final_metrics.get(name) for name in metrics], [run.config_flat.get(key) for key in config_keys])
            for run in page.object_list]
    context = {
        "page": page, "rows": rows, "headers": headers, "columns": columns, "metrics": metrics,
        "config_keys": config_keys, "all_columns": [(name, label) for name, (label, _) in COLUMNS.items()],
        "query": query, "errors": errors, "statuses": RunStatus.choices,
        "wheres": [f"{key.removeprefix(explorer.CONFIG_PREFIX)}={value}" for key, value in params.items()
                   if key.startswith(explorer.CONFIG_PREFIX)],
        "known_keys": sorted(page.object_list[0].config_flat) if rows else [],
        "known_metrics": sorted({name for run, _, _ in rows for name in run.final_metrics}),
    }
    return render(request, "experiments/run_list.html", context, status=400 if errors else 200)


@login_required
def run_compare(request: HttpRequest) -> HttpResponse:
    """Any runs side by side: overlaid curves per metric, the config keys that differ, final metrics."""
    text = ",".join(request.GET.getlist("ids"))
    try:
        comparison = explorer.runs_compare(user=request.user, ids=explorer.parse_run_ids(text))
    except ValidationError as error:
        return render(request, "experiments/run_compare.html", {"error": " ".join(error.messages)}, status=400)
    charts = run_charts.compare_charts(comparison.runs)
    context: dict[str, Any] = {"comparison": comparison, "charts": charts, "has_charts": True,
                               "final_rows": list(comparison.final.items()),
                               "diff_rows": list(comparison.config_diff.items()), "ids": text}
    return render(request, "experiments/run_compare.html", context)
