"""Turning a run directory's files into rows: metrics.jsonl → Metric upserts and run progress,
status.json → the trainer's own verdict (the log tail lives in `runfiles`)."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from experiments.models import Metric, Run
from modelzoo.run_files import STATUS_FILE

log = logging.getLogger(__name__)

NOT_METRICS = {"step"}  # the key every point is stored under, not a value
# Logged as a metric so charts can plot against wall time, but not a result: left out of Run.final_metrics.
NOT_FINAL = {"time"}
UPSERT_BATCH = 2000


class MetricsTail:
    """Reads the complete lines appended to ``metrics.jsonl`` since the last call. A half-written last
    line is left for next time; a file that shrank (rewritten on resume) is read again from the start,
    which is safe because rows are upserted."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, 2)
                if handle.tell() < self.offset:
                    self.offset = 0
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        records = []
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("skipping malformed line in %s: %.80r", self.path, line)
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
        return records


def metric_rows(run_id: int, records: list[dict[str, Any]]) -> list[Metric]:
    """One row per numeric value; NaN/inf are skipped (a diverged run fails and its log says why)."""
    rows = []
    for record in records:
        for name, value in record.items():
            if name in NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                rows.append(Metric(run_id=run_id, step=record["step"], name=name, value=float(value)))
    return rows


def ingest(run: Run, records: list[dict[str, Any]]) -> int:
    """Upsert the records' points and update the run's progress; returns the number of points written."""
    if not records:
        return 0
    rows = metric_rows(run.pk, records)
    Metric.objects.bulk_create(
        rows,
        batch_size=UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["run", "name", "step"],
        update_fields=["value"],
    )
    _update_progress(run, max(records, key=lambda record: record["step"]))
    final_metrics_refresh(run_id=run.pk, names={row.name for row in rows})
    return len(rows)


def final_metrics_refresh(*, run_id: int, names: set[str] | None = None) -> dict[str, float]:
    """Copy the value at the last logged step of each metric in ``names`` (None: all) into ``Run.final_metrics``,
    which the runs explorer filters and orders by. Read back from the rows rather than from the batch, because
    a resumed attempt re-logs steps below ones an earlier attempt already wrote. One read, one write."""
    points = Metric.objects.filter(run_id=run_id).exclude(name__in=NOT_FINAL)
    if names is not None:
        points = points.filter(name__in=sorted(names))
    last_step = Metric.objects.filter(run_id=run_id, name=OuterRef("name")).order_by("-step").values("step")[:1]
    latest = dict(points.filter(step=Subquery(last_step)).values_list("name", "value"))
    current = {} if names is None else Run.objects.filter(pk=run_id).values_list("final_metrics", flat=True).first() or {}
    merged = {**current, **latest}
    Run.objects.filter(pk=run_id).update(final_metrics=merged)
    return merged


def _update_progress(run: Run, last: dict[str, Any]) -> None:
    step = last["step"]
    tokens = int(last.get("tokens") or 0)
    speed = last.get("tokens_per_s")
    eta = None
    if speed and step > 0 and tokens > 0:
        eta = max(0, run.max_steps - step) * (tokens / step) / speed
    Run.objects.filter(pk=run.pk).update(
        step=step, tokens=tokens, tokens_per_s=speed, eta_seconds=eta, progress_at=timezone.now()
    )


def read_status(run_dir: Path) -> dict[str, Any]:
    """The trainer's status.json, or {} when it is missing or half-written."""
    try:
        status = json.loads((run_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return status if isinstance(status, dict) else {}
