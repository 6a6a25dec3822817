"""What each CLI command does: call the client, print a table (or JSON with ``--json``), return the exit
status. Errors are raised as :mod:`flightdeck.errors` and turned into one line by ``flightdeck.cli``."""
from __future__ import annotations

import csv
import getpass
import itertools
import json
import sys
from argparse import Namespace
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from flightdeck import config, render
from flightdeck.client import Client
from flightdeck.errors import FlightdeckError


class Output:
    """Where a command writes: a table for people, JSON for machines (one document per command, or one
    JSON object per line for ``watch``)."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def json(self, value: Any, *, compact: bool = False) -> None:
        text = json.dumps(value, separators=(",", ":")) if compact else json.dumps(value, indent=2)
        self.line(text)


def connect() -> Client:
    settings = config.load()
    return Client(settings.url, settings.token)


def _limited(items: Iterator[dict], limit: int) -> list[dict]:
    return list(itertools.islice(items, limit) if limit > 0 else items)


def _csv_list(text: str, what: str, convert: type = str) -> list:
    try:
        return [convert(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FlightdeckError(f"{what} must be a comma-separated list of {convert.__name__}s, got {text!r}") from None


def _assignments(pairs: Iterable[str], what: str) -> dict[str, Any]:
    """``key=value`` arguments; values are read as JSON where they parse (numbers, true, lists), else text."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FlightdeckError(f"{what} must look like key=value, got {pair!r}")
        try:
            result[key.strip()] = json.loads(value.strip())
        except ValueError:
            result[key.strip()] = value.strip()
    return result


# ------------------------------------------------------------------------------------------------ login


def login(args: Namespace, out: Output) -> int:
    url = args.url or input("Flightdeck URL (e.g. http://127.0.0.1:8000): ").strip()
    token = args.token
    if not token:
        token = getpass.getpass("API token: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    with Client(url, token) as client:
        index = client.index()  # proves URL and token before anything is stored
    path = config.save(url=url, token=token)
    if out.as_json:
        out.json({"url": client.url, "user": index.get("user"), "config": str(path)})
    else:
        out.line(f"Signed in to {client.url} as {index.get('user') or '?'}; saved in {path}")
    return 0


def logout(args: Namespace, out: Output) -> int:
    removed = config.forget()
    if out.as_json:
        out.json({"removed": removed, "config": str(config.config_path())})
    else:
        out.line(f"Removed {config.config_path()}" if removed else "No stored credentials")
    return 0


# ------------------------------------------------------------------------------------------------ ideas


def ideas_list(args: Namespace, out: Output) -> int:
    with connect() as client:
        ideas = _limited(client.ideas.list(area=args.area, status=args.status, q=args.q, tag=args.tag), args.limit)
    if out.as_json:
        out.json(ideas)
    else:
        out.line(render.table(["key", "status", "area", "title"],
                              [[i["key"], i["status"], i["area"], i["title"]] for i in ideas]))
    return 0


def ideas_show(args: Namespace, out: Output) -> int:
    with connect() as client:
        idea = client.ideas.get(args.key)
    if out.as_json:
        out.json(idea)
        return 0
    out.line(render.fields({
        "key": idea["key"], "title": idea["title"], "status": idea["status"], "area": idea["area"],
        "pic": idea["pic"], "submitter": idea["submitter"], "patch": idea["recipe_patch"], "tags": idea["tags"],
        "next": ", ".join(idea["allowed_transitions"]),
    }))
    out.line()
    out.line(idea["summary"])
    if idea.get("transitions"):
        out.line()
        out.line(render.table(["when", "from", "to", "by", "note"], [
            [t["created_at"][:16], t["from_status"], t["to_status"], t["actor"], t["note"]]
            for t in idea["transitions"]]))
    return 0


def ideas_submit(args: Namespace, out: Output) -> int:
    # The `key = value` lines go to the server as the web form sends them, so both parse and check them alike.
    patch = "\n".join(args.patch) if args.patch else None
    with connect() as client:
        idea = client.ideas.submit(area=args.area, title=args.title, summary=args.summary,
                                   hypothesis=args.hypothesis, patch=patch, tags=args.tag)
    if out.as_json:
        out.json(idea)
    else:
        out.line(f"Submitted {idea['key']}: {idea['title']} ({idea['status']})")
        for warning in idea.get("warnings", []):
            out.line(f"Warning: {warning}")
    return 0


def ideas_comment(args: Namespace, out: Output) -> int:
    with connect() as client:
        comment = client.ideas.comment(args.key, args.text)
    out.json(comment) if out.as_json else out.line(f"Commented on {args.key}")
    return 0


def ideas_move(args: Namespace, out: Output) -> int:
    with connect() as client:
        transition = client.ideas.move(args.key, args.status, note=args.note)
    if out.as_json:
        out.json(transition)
    else:
        out.line(f"{args.key}: {transition['from_status']} → {transition['to_status']}")
    return 0


# ---------------------------------------------------------------------------------------------- studies


def _study_arguments(args: Namespace) -> dict[str, Any]:
    return {"baseline": args.baseline, "ideas": _csv_list(args.ideas, "--ideas"),
            "seeds": _csv_list(args.seeds, "--seeds", int), "max_steps": args.steps, "kind": args.kind,
            "leave_one_out": args.leave_one_out, "resolutions": _assignments(args.resolve, "--resolve"),
            "backend": args.backend, "title": args.title}


def studies_preview(args: Namespace, out: Output) -> int:
    with connect() as client:
        plan = client.studies.preview(**_study_arguments(args))
    if out.as_json:
        out.json(plan)
        return 0
    out.line(f"{plan['kind'].capitalize()} study on {plan['baseline']} of {', '.join(plan['ideas'])}, "
             f"seeds {', '.join(map(str, plan['seeds']))}, {plan['max_steps']} steps")
    if plan["conflicts"]:
        out.line("Conflicts (resolve each with --resolve key=value):")
        for conflict in plan["conflicts"]:
            values = ", ".join(f"{v['idea']} sets {json.dumps(v['value'])}" for v in conflict["values"])
            out.line(f"  {conflict['key']}: {values}")
    out.line(render.table(["arm", "kind", "ideas", "patch"],
                          [[a["name"], a["kind"], ", ".join(a["ideas"]), a["patch"]] for a in plan["arms"]]))
    for merged in plan.get("merged", []):
        out.line(f"Identical configs, one run each seed: {', '.join(merged['arms'])}")
    out.line(f"Runs: {plan['run_count']}; estimate: {_hours(plan['estimated_gpu_hours'])}")
    budget = plan.get("budget")
    if budget:
        out.line(f"Grant: {budget['message']}")
    for problem in plan.get("problems", []):
        out.line(f"Cannot launch: {problem}")
    return 0 if plan.get("launchable", True) else 1


def _hours(value: float | None) -> str:
    return "no measured throughput yet" if value is None else f"{value:.2f} GPU-hours"


def studies_launch(args: Namespace, out: Output) -> int:
    with connect() as client:
        study = client.studies.launch(**_study_arguments(args), override=args.override,
                                      override_reason=args.reason, idempotency_key=args.idempotency_key)
    if out.as_json:
        out.json(study)
    else:
        out.line(f"Launched study {study['id']}: {study['title']} ({len(study['runs'])} runs)")
    return 0


def studies_list(args: Namespace, out: Output) -> int:
    with connect() as client:
        studies = _limited(client.studies.list(kind=args.kind, status=args.status, idea=args.idea, area=args.area,
                                               launched_by=args.launched_by, baseline=args.baseline), args.limit)
    if out.as_json:
        out.json(studies)
    else:
        out.line(render.table(["id", "kind", "status", "baseline", "ideas", "title"], [
            [s["id"], s["kind"], s["status"], s["baseline"], ", ".join(s["ideas"]), s["title"]] for s in studies]))
    return 0


def _arm_of_runs(study: dict) -> dict[int, str]:
    names: dict[int, list[str]] = {}
    for arm in study["arms"]:
        for run_id in arm["runs"]:
            names.setdefault(run_id, []).append(arm["name"])
    return {run_id: ",".join(arm_names) for run_id, arm_names in names.items()}


def _print_results(study: dict, out: Output) -> None:
    out.line(render.table(["arm", "runs", "final val loss", "vs baseline"], [
        [arm["name"], len(arm["runs"]), render.seed_stats(arm["seed_stats"]), render.difference(arm["vs_baseline"])]
        for arm in study["arms"]]))
    for line in study.get("verdict", []):
        out.line(f"Verdict: {line}")
    for marginal in study.get("marginals", []):
        out.line(f"  {marginal['text']}")
    for warning in study.get("warnings", []):
        out.line(f"Warning: {warning}")


def studies_show(args: Namespace, out: Output) -> int:
    with connect() as client:
        study = client.studies.get(args.id)
    if out.as_json:
        out.json(study)
        return 0
    out.line(render.fields({"study": f"{study['id']}: {study['title']}", "kind": study["kind"],
                            "baseline": study["baseline"], "ideas": ", ".join(study["ideas"]),
                            "seeds": ", ".join(map(str, study["seeds"])), "steps": study["max_steps"],
                            "status": study["status"], "launched by": study["created_by"]}))
    out.line()
    arms = _arm_of_runs(study)
    out.line(render.table(["run", "arms", "seed", "status", "step", "gpu-hours"], [
        [r["id"], arms.get(r["id"]), r["seed"], r["status"], f"{r['step']}/{r['max_steps']}", r["gpu_hours"]]
        for r in study["runs"]]))
    out.line()
    _print_results(study, out)
    return 0


class _Progress:
    """Per-run progress bars. On a terminal the block is redrawn in place; elsewhere (logs, pipes, agents)
    a run's line is printed when its status changes or it passes another tenth of its steps."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.live = out.stream.isatty()
        self.drawn = 0
        self.seen: dict[int, tuple[str, int]] = {}

    def show(self, study: dict) -> None:
        arms = _arm_of_runs(study)
        lines = []
        for run in study["runs"]:
            fraction = run["progress"] or 0.0
            eta = f" ETA {render.duration(run['eta_seconds'])}" if run["status"] == "running" else ""
            line = (f"run {run['id']:<6} {arms.get(run['id'], ''):<18.18} seed {run['seed']:<3} "
                    f"{render.bar(fraction)} {fraction:4.0%} {run['step']}/{run['max_steps']} {run['status']}{eta}")
            lines.append(line)
            state = (run["status"], int(fraction * 10))
            if not self.live and self.seen.get(run["id"]) != state:
                self.seen[run["id"]] = state
                self.out.line(line)
        if self.live:
            if self.drawn:
                self.out.stream.write(f"\x1b[{self.drawn}F")
            for line in lines:
                self.out.stream.write("\x1b[2K" + line + "\n")
            self.out.stream.flush()
            self.drawn = len(lines)


def studies_watch(args: Namespace, out: Output) -> int:
    """Progress until no run is live, then the results; exit 0 only if every run succeeded."""
    progress = _Progress(out)
    study: dict = {}
    with connect() as client:
        for study in client.studies.watch(args.id, interval=args.interval, timeout=args.timeout):
            if out.as_json:
                out.json({"id": study["id"], "status": study["status"],
                          "runs": [{key: run[key] for key in ("id", "status", "step", "max_steps", "progress")}
                                   for run in study["runs"]]}, compact=True)
            else:
                progress.show(study)
    if out.as_json:
        out.json(study, compact=True)
    else:
        out.line(f"Study {study['id']} {study['status']}.")
        _print_results(study, out)
    return 0 if study["status"] == "succeeded" else 1


def studies_cancel(args: Namespace, out: Output) -> int:
    with connect() as client:
        answer = client.studies.cancel(args.id)
    out.json(answer) if out.as_json else out.line(f"Cancelled {answer['cancelled']} live run(s) of study {args.id}")
    return 0


# ------------------------------------------------------------------------------------------------- runs


def runs_list(args: Namespace, out: Output) -> int:
    with connect() as client:
        runs = _limited(client.runs.list(study=args.study, idea=args.idea, area=args.area, baseline=args.baseline,
                                         status=args.status, tag=args.tag, ordering=args.ordering,
                                         config=_assignments(args.config, "--config")), args.limit)
    if out.as_json:
        out.json(runs)
        return 0
    metrics = sorted({name for run in runs for name in (run.get("final") or {})} & {"val_loss", "train_loss"})
    out.line(render.table(["id", "study", "seed", "status", "step", *metrics, "gpu-hours"], [
        [r["id"], r.get("study"), r["seed"], r["status"], f"{r['step']}/{r['max_steps']}",
         *[(r.get("final") or {}).get(name) for name in metrics], r["gpu_hours"]] for r in runs]))
    return 0


def runs_show(args: Namespace, out: Output) -> int:
    with connect() as client:
        run = client.runs.get(args.id)
    if out.as_json:
        out.json(run)
        return 0
    out.line(render.fields({"run": f"{run['id']} ({run['public_id']})", "study": run["study"],
                            "arms": ", ".join(run["arms"]), "seed": run["seed"], "status": run["status"],
                            "step": f"{run['step']}/{run['max_steps']}", "tokens": run["tokens"],
                            "tokens/s": render.number(run["tokens_per_s"]), "gpu-hours": render.number(run["gpu_hours"]),
                            "overrides": run["overrides"], "code": run["code_revision"]}))
    out.line()
    out.line(render.table(["attempt", "state", "host", "exit", "reason"], [
        [a["number"], a["state"], a["host"], a["exit_code"], a["reason"]] for a in run["attempts"]]))
    return 0


def runs_logs(args: Namespace, out: Output) -> int:
    with connect() as client:
        if out.as_json:
            out.json(client.runs.logs(args.id, attempt=args.attempt))
            return 0
        for text in client.runs.follow_logs(args.id, attempt=args.attempt, follow=args.follow):
            out.stream.write(text)
            out.stream.flush()
    return 0


def runs_metrics(args: Namespace, out: Output) -> int:
    with connect() as client:
        series = client.runs.metrics(args.id, args.name, max_points=args.max_points)
    if out.as_json:
        out.json(series)
    elif args.csv:
        writer = csv.writer(out.stream, lineterminator="\n")
        writer.writerow(["step", series["name"]])
        writer.writerows([[int(step), value] for step, value in series["points"]])
    else:
        out.line(render.table(["step", series["name"]], [[int(step), value] for step, value in series["points"]]))
    return 0


def runs_compare(args: Namespace, out: Output) -> int:
    with connect() as client:
        comparison = client.runs.compare(args.ids)
    if out.as_json:
        out.json(comparison)
        return 0
    headers = ["", *[f"run {run['id']}" for run in comparison["runs"]]]
    rows = [[f"final.{name}", *values] for name, values in sorted(comparison["final"].items())]
    rows += [[key, *values] for key, values in sorted(comparison["config_diff"].items())]
    out.line(render.table(headers, rows))
    if not comparison["config_diff"]:
        out.line("The runs' configs are identical.")
    return 0


def runs_cancel(args: Namespace, out: Output) -> int:
    with connect() as client:
        run = client.runs.cancel(args.id)
    out.json(run) if out.as_json else out.line(f"Run {run['id']}: {run['status']}")
    return 0


# --------------------------------------------------------------------------------------------- baselines


def baselines_list(args: Namespace, out: Output) -> int:
    with connect() as client:
        baselines = list(client.baselines.list())
    if out.as_json:
        out.json(baselines)
    else:
        out.line(render.table(["name", "version", "recipe", "backend", "overrides"], [
            [b["name"], b["version"], b["recipe"], b["backend"], b["overrides"]] for b in baselines]))
    return 0


def baselines_show(args: Namespace, out: Output) -> int:
    with connect() as client:
        baseline = client.baselines.get(args.name)
    if out.as_json:
        out.json(baseline)
        return 0
    out.line(render.fields({"baseline": baseline["label"], "recipe": baseline["recipe"],
                            "backend": baseline["backend"], "overrides": baseline["overrides"],
                            "versions": ", ".join(str(v["version"]) for v in baseline["versions"])}))
    out.line(json.dumps(baseline["config"], indent=2))
    return 0


# ---------------------------------------------------------------------------------------------- compute


def compute_cycles(args: Namespace, out: Output) -> int:
    with connect() as client:
        cycles = list(client.compute.cycles())
    if out.as_json:
        out.json(cycles)
    else:
        out.line(render.table(["id", "start", "last day", "phase", "requests open", "review"], [
            [c["id"], c["start"], c["last_day"], c["phase"], c["requests_open_from"][:16], c["review_starts"][:16]]
            for c in cycles]))
    return 0


def compute_pools(args: Namespace, out: Output) -> int:
    with connect() as client:
        pools = list(client.compute.pools())
    if out.as_json:
        out.json(pools)
    else:
        out.line(render.table(["name", "gpu type", "gpus"], [[p["name"], p["gpu_type"], p["gpu_count"]] for p in pools]))
    return 0


def compute_request(args: Namespace, out: Output) -> int:
    with connect() as client:
        cycle = args.cycle
        if cycle is None:
            open_cycle = client.compute.open_cycle()
            if open_cycle is None:
                raise FlightdeckError("no cycle is open for requests now; name one with --cycle")
            cycle = open_cycle["id"]
        answer = client.compute.request(cycle=cycle, area=args.area, pool=args.pool, gpu_hours=args.hours,
                                        justification=args.justification, stage=args.stage, idea=args.idea,
                                        evidence_links=args.evidence)
    if out.as_json:
        out.json(answer)
    else:
        target = answer["idea"] or answer["area"]
        out.line(f"Request {answer['id']}: {answer['gpu_hours']} GPU-hours on {answer['pool']} for {target} "
                 f"in cycle {answer['cycle']} ({answer['status']})")
    return 0


def compute_requests(args: Namespace, out: Output) -> int:
    with connect() as client:
        found = _limited(client.compute.requests(cycle=args.cycle, area=args.area, status=args.status,
                                                 stage=args.stage), args.limit)
    if out.as_json:
        out.json(found)
    else:
        out.line(render.table(["id", "cycle", "area", "idea", "pool", "hours", "granted", "stage", "status"], [
            [r["id"], r["cycle"], r["area"], r["idea"], r["pool"], r["gpu_hours"], r["granted_hours"], r["stage"],
             r["status"]] for r in found]))
    return 0


def compute_usage(args: Namespace, out: Output) -> int:
    with connect() as client:
        usage = client.compute.usage(cycle=args.cycle, area=args.area)
    if out.as_json:
        out.json(usage)
    else:
        out.line(f"Cycle {usage['cycle']}: {usage['total_gpu_hours']:.2f} GPU-hours used")
        out.line(render.table(["area", "idea", "pool", "gpu-hours"],
                              [[r["area"], r["idea"], r["pool"], r["gpu_hours"]] for r in usage["results"]]))
    return 0

