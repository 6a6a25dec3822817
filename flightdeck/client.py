"""``flightdeck.Client``: the REST API of a Flightdeck server as Python methods, grouped by resource.

    from flightdeck import Client
    with Client("http://127.0.0.1:8000", token) as fd:
        idea = fd.ideas.submit(area="moe-routing", title="Top-1 routing", summary="...",
                               patch={"moe.top_k": 1})
        plan = fd.studies.preview(baseline="tiny-ci", ideas=[idea["key"]], seeds=[0, 1], max_steps=200,
                                  kind="ablation")
        study = fd.studies.launch(baseline="tiny-ci", ideas=[idea["key"]], seeds=[0, 1], max_steps=200,
                                  kind="ablation")
        for snapshot in fd.studies.watch(study["id"]):
            ...

Answers are the API's JSON (dicts and lists); list methods return iterators that fetch pages lazily.
Errors are :mod:`flightdeck.errors` types carrying the API's message.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flightdeck.transport import Transport

# A study is over when no run is live (the API's overall ``status``).
FINAL_STUDY_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
Json = dict[str, Any]


class Client:
    """A Flightdeck server reached at ``url`` (``http://host:8000`` or its ``/api/v1/``) with an API token.

    ``max_retries`` and ``max_retry_wait`` govern retries of 429/503 and network failures (see
    :mod:`flightdeck.transport`)."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, max_retries: int = 4,
                 max_retry_wait: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport = Transport(url, token, timeout=timeout, max_retries=max_retries,
                                   max_retry_wait=max_retry_wait, sleep=sleep)
        self.ideas = Ideas(self.transport)
        self.studies = Studies(self.transport, sleep)
        self.runs = Runs(self.transport, sleep)
        self.baselines = Baselines(self.transport)
        self.compute = Compute(self.transport)

    @property
    def url(self) -> str:
        return self.transport.root

    def index(self) -> Json:
        """``GET /api/v1/``: the resources with their URLs, and who the token belongs to."""
        return self.transport.request("GET", "")

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Resource:
    def __init__(self, transport: Transport) -> None:
        self._t = transport


class Ideas(_Resource):
    def list(self, *, area: str | None = None, status: str | None = None, q: str | None = None,
             pic: str | None = None, tag: str | None = None) -> Iterator[Json]:
        return self._t.pages("ideas/", {"area": area, "status": status, "q": q, "pic": pic, "tag": tag})

    def get(self, key: str) -> Json:
        return self._t.request("GET", f"ideas/{key}/")

    def submit(self, *, area: str, title: str, summary: str, hypothesis: str = "",
               patch: Mapping[str, Any] | str | None = None, tags: Iterable[str] = (),
               estimated_gpu_hours: float | None = None, idempotency_key: str | None = None) -> Json:
        """A new idea. ``patch`` is a dict of dotted config keys or the web form's ``key = value`` lines.
        Safe to retry, like ``Studies.launch``."""
        body: Json = {"area": area, "title": title, "summary": summary, "hypothesis": hypothesis,
                      "tags": list(tags), "estimated_gpu_hours": estimated_gpu_hours}
        if patch:
            body["recipe_patch"] = patch if isinstance(patch, str) else dict(patch)
        return self._t.request("POST", "ideas/", json=body, headers=_idempotency(idempotency_key))

    def update(self, key: str, **changes: Any) -> Json:
        return self._t.request("PATCH", f"ideas/{key}/", json=changes)

    def comments(self, key: str) -> list[Json]:
        return self._t.request("GET", f"ideas/{key}/comments/")

    def comment(self, key: str, body: str) -> Json:
        return self._t.request("POST", f"ideas/{key}/comments/", json={"body": body})

    def move(self, key: str, status: str, *, note: str = "", decision: Mapping[str, Any] | None = None) -> Json:
        """Move the idea to ``status`` (its lifecycle decides which moves are allowed)."""
        body: Json = {"to": status, "note": note}
        if decision is not None:
            body["decision"] = dict(decision)
        return self._t.request("POST", f"ideas/{key}/transitions/", json=body)


def _study_body(*, baseline: str, ideas: Iterable[str], seeds: Iterable[int], max_steps: int, kind: str,
                leave_one_out: bool, resolutions: Mapping[str, Any] | None, backend: str | None,
                title: str) -> Json:
    body: Json = {"kind": kind, "baseline": baseline, "ideas": list(ideas), "seeds": list(seeds),
                  "max_steps": max_steps, "leave_one_out": leave_one_out, "resolutions": dict(resolutions or {}),
                  "title": title}
    if backend:
        body["backend"] = backend
    return body


class Studies(_Resource):
    def __init__(self, transport: Transport, sleep: Callable[[float], None]) -> None:
        super().__init__(transport)
        self._sleep = sleep

    def list(self, *, kind: str | None = None, status: str | None = None, idea: str | None = None,
             area: str | None = None, launched_by: str | None = None, baseline: str | None = None) -> Iterator[Json]:
        return self._t.pages("studies/", {"kind": kind, "status": status, "idea": idea, "area": area,
                                          "launched_by": launched_by, "baseline": baseline})

    def get(self, study_id: int) -> Json:
        return self._t.request("GET", f"studies/{study_id}/")

    def preview(self, *, baseline: str, ideas: Iterable[str], seeds: Iterable[int], max_steps: int,
                kind: str = "integration", leave_one_out: bool = False,
                resolutions: Mapping[str, Any] | None = None, backend: str | None = None, title: str = "") -> Json:
        """The plan of a launch with the same arguments, creating nothing: arms, composed patches,
        conflicts, merged identical configs, the GPU-hour estimate and whether the grant covers it."""
        body = _study_body(baseline=baseline, ideas=ideas, seeds=seeds, max_steps=max_steps, kind=kind,
                           leave_one_out=leave_one_out, resolutions=resolutions, backend=backend, title=title)
        return self._t.request("POST", "studies/preview/", json=body)

    def launch(self, *, baseline: str, ideas: Iterable[str], seeds: Iterable[int], max_steps: int,
               kind: str = "integration", leave_one_out: bool = False,
               resolutions: Mapping[str, Any] | None = None, backend: str | None = None, title: str = "",
               override: bool = False, override_reason: str = "", idempotency_key: str | None = None) -> Json:
        """Launch a study. The ``Idempotency-Key`` (a new one per call unless given) makes the call safe to
        retry: the server answers a repeated key with the study it already launched."""
        body = _study_body(baseline=baseline, ideas=ideas, seeds=seeds, max_steps=max_steps, kind=kind,
                           leave_one_out=leave_one_out, resolutions=resolutions, backend=backend, title=title)
        if override:
            body.update(override=True, override_reason=override_reason)
        return self._t.request("POST", "studies/", json=body, headers=_idempotency(idempotency_key))

    def cancel(self, study_id: int) -> Json:
        """Cancel every live run of the study; answers ``{"cancelled": n}``."""
        return self._t.request("POST", f"studies/{study_id}/cancel/")

    def watch(self, study_id: int, *, interval: float = 2.0, timeout: float | None = None) -> Iterator[Json]:
        """The study now and after every ``interval`` seconds, until no run is live (the last one yielded
        is final). ``timeout`` (seconds) stops watching early with a ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            study = self.get(study_id)
            yield study
            if study["status"] in FINAL_STUDY_STATUSES:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"study {study_id} is still {study['status']} after {timeout:.0f} s")
            self._sleep(interval)


class Runs(_Resource):
    def __init__(self, transport: Transport, sleep: Callable[[float], None]) -> None:
        super().__init__(transport)
        self._sleep = sleep

    def list(self, *, study: int | None = None, idea: str | None = None, area: str | None = None,
             baseline: str | None = None, status: str | None = None, tag: str | None = None,
             config: Mapping[str, Any] | None = None, ordering: str | None = None,
             q: str | None = None) -> Iterator[Json]:
        """Runs the user may see. ``config`` filters on resolved config values by dotted key
        (``{"optim.lr": 0.002}`` → ``config.optim.lr=0.002``); ``ordering`` is a field or
        ``final.<metric>``, ``-`` first for descending."""
        params: Json = {"study": study, "idea": idea, "area": area, "baseline": baseline, "status": status,
                        "tag": tag, "ordering": ordering, "q": q}
        params.update({f"config.{key}": _query_value(value) for key, value in (config or {}).items()})
        return self._t.pages("runs/", params)

    def get(self, run_id: int) -> Json:
        return self._t.request("GET", f"runs/{run_id}/")

    def metrics(self, run_id: int, name: str, *, max_points: int | None = None) -> Json:
        """``{"run", "name", "count", "points": [[step, value], ...]}``; ``max_points`` downsamples."""
        return self._t.request("GET", f"runs/{run_id}/metrics/", params={"name": name, "max_points": max_points})

    def compare(self, run_ids: Iterable[int]) -> Json:
        """``{"runs": [...], "config_diff": {key: [values]}, "final": {metric: [values]}}``."""
        return self._t.request("GET", "runs/compare/", params={"ids": [int(run_id) for run_id in run_ids]})

    def logs(self, run_id: int, *, attempt: int | None = None, offset: int = 0) -> Json:
        """One chunk of an attempt's log (the latest attempt unless given), from byte ``offset``:
        ``{"attempt", "offset", "next_offset", "text", "complete"}``."""
        return self._t.request("GET", f"runs/{run_id}/logs/", params={"attempt": attempt, "offset": offset or None})

    def follow_logs(self, run_id: int, *, attempt: int | None = None, interval: float = 1.0,
                    follow: bool = True) -> Iterator[str]:
        """The log's text in chunks; with ``follow``, keeps polling until the attempt has finished."""
        offset = 0
        while True:
            chunk = self.logs(run_id, attempt=attempt, offset=offset)
            attempt = chunk["attempt"]
            if chunk["text"]:
                yield chunk["text"]
            offset = chunk["next_offset"]
            if chunk["next_offset"] > chunk["offset"]:
                continue  # more may be waiting right now
            if chunk["complete"] or not follow:
                return
            self._sleep(interval)

    def cancel(self, run_id: int) -> Json:
        return self._t.request("POST", f"runs/{run_id}/cancel/")

    def resume(self, run_id: int, *, idempotency_key: str | None = None) -> Json:
        """Queue a new attempt of a failed or cancelled run, from its last checkpoint. Safe to retry."""
        return self._t.request("POST", f"runs/{run_id}/resume/", headers=_idempotency(idempotency_key))


class Baselines(_Resource):
    def list(self) -> Iterator[Json]:
        return self._t.pages("baselines/")

    def get(self, name: str) -> Json:
        """A baseline by ``name`` (latest version) with its versions, recipe and resolved config."""
        return self._t.request("GET", f"baselines/{name}/")


class Compute(_Resource):
    def cycles(self) -> Iterator[Json]:
        return self._t.pages("cycles/")

    def open_cycle(self) -> Json | None:
        """The cycle now open for requests (the earliest, if several are), or None."""
        open_cycles = [cycle for cycle in self.cycles() if cycle["phase"] == "open"]
        return min(open_cycles, key=lambda cycle: cycle["start"]) if open_cycles else None

    def allocations(self, cycle_id: int) -> Json:
        return self._t.request("GET", f"cycles/{cycle_id}/allocations/")

    def pools(self) -> Iterator[Json]:
        return self._t.pages("pools/")

    def usage(self, *, cycle: int | None = None, area: str | None = None) -> Json:
        return self._t.request("GET", "usage/", params={"cycle": cycle, "area": area})

    def requests(self, *, cycle: int | None = None, area: str | None = None, status: str | None = None,
                 stage: str | None = None) -> Iterator[Json]:
        return self._t.pages("requests/", {"cycle": cycle, "area": area, "status": status, "stage": stage})

    def get_request(self, request_id: int) -> Json:
        return self._t.request("GET", f"requests/{request_id}/")

    def request(self, *, cycle: int, area: str, pool: str, gpu_hours: float, justification: str,
                stage: str = "pilot", idea: str | None = None, evidence_links: Iterable[str] = (),
                idempotency_key: str | None = None) -> Json:
        """Ask for GPU-hours (or edit the open request for the same cycle, pool and target). Safe to retry."""
        body = {"cycle": cycle, "area": area, "idea": idea, "pool": pool, "gpu_hours": gpu_hours,
                "justification": justification, "stage": stage, "evidence_links": list(evidence_links)}
        return self._t.request("POST", "requests/", json=body, headers=_idempotency(idempotency_key))

    def review(self, request_id: int, *, decision: str, gpu_hours: float | None = None, comment: str = "") -> Json:
        return self._t.request("POST", f"requests/{request_id}/review/",
                               json={"decision": decision, "gpu_hours": gpu_hours, "comment": comment})


def _idempotency(key: str | None) -> dict[str, str]:
    """The header that makes a write safe to send again: the given key, or a new one for this call (every try
    of the call sends the same one, so the server does the work once)."""
    return {"Idempotency-Key": key or str(uuid.uuid4())}


def _query_value(value: Any) -> str:
    """A config value as the API's ``config.<key>=`` filter reads it (JSON spelling for booleans/None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
