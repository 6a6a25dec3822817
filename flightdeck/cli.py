"""``flightdeck`` / ``python -m flightdeck``: the command line over :class:`flightdeck.Client`.

Every command prints a table by default and JSON with ``--json``. Failures print one line on stderr
(``flightdeck: <the problem>``) and exit 1; a usage mistake exits 2 (argparse); ``studies watch`` exits 1
when the study ended failed or cancelled, so scripts can chain on it.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from flightdeck import __version__, commands
from flightdeck.errors import FlightdeckError, Unauthorized

STUDY_KINDS = ("integration", "ablation")


def _add(group: argparse._SubParsersAction, name: str, handler: Callable, help_text: str,
         common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _group(commands_of: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    parser = commands_of.add_parser(name, help=help_text, description=help_text)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    sub.required = True
    return sub


def _study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="baseline name, or name@version")
    parser.add_argument("--ideas", required=True, help="idea keys in composition order, e.g. IDEA-0001,IDEA-0002")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--steps", type=int, required=True, help="training steps per run")
    parser.add_argument("--kind", choices=STUDY_KINDS, default="integration")
    parser.add_argument("--leave-one-out", action="store_true", help="add the 'all but one idea' arms")
    parser.add_argument("--resolve", action="append", default=[], metavar="KEY=VALUE",
                        help="the value to use for a conflicting key (repeatable)")
    parser.add_argument("--backend", help="execution backend (default: the baseline's)")
    parser.add_argument("--title", default="")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for machines")

    parser = argparse.ArgumentParser(prog="flightdeck", parents=[common], description=(
        "Drive a Flightdeck server: ideas, studies, runs, baselines and compute. The server and token come "
        "from FLIGHTDECK_URL and FLIGHTDECK_TOKEN, or from `flightdeck login`."))
    parser.add_argument("--version", action="version", version=f"flightdeck {__version__}")
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    top.required = True

    login = _add(top, "login", commands.login, "check a server URL and API token, then store them (mode 0600)", common)
    login.add_argument("--url", help="e.g. http://127.0.0.1:8000 (asked for when left out)")
    login.add_argument("--token", help="an API token from /accounts/tokens/ (asked for, or read from stdin)")
    _add(top, "logout", commands.logout, "forget the stored URL and token", common)

    ideas = _group(top, "ideas", "ideas: list, show, submit, comment, move")
    listing = _add(ideas, "list", commands.ideas_list, "ideas you may see", common)
    listing.add_argument("--area", help="area slug")
    listing.add_argument("--status")
    listing.add_argument("--q", help="search words")
    listing.add_argument("--tag")
    listing.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    _add(ideas, "show", commands.ideas_show, "one idea with its history", common).add_argument("key")
    submit = _add(ideas, "submit", commands.ideas_submit, "submit a new idea", common)
    submit.add_argument("--area", required=True, help="area slug")
    submit.add_argument("--title", required=True)
    submit.add_argument("--summary", required=True)
    submit.add_argument("--hypothesis", default="")
    submit.add_argument("--patch", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe patch line such as 'moe.top_k = 1' (repeatable), or a JSON object")
    submit.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    comment = _add(ideas, "comment", commands.ideas_comment, "comment on an idea", common)
    comment.add_argument("key")
    comment.add_argument("text")
    move = _add(ideas, "move", commands.ideas_move, "move an idea to another status", common)
    move.add_argument("key")
    move.add_argument("status")
    move.add_argument("--note", default="")

    studies = _group(top, "studies", "studies: preview, launch, list, show, watch, cancel")
    _study_options(_add(studies, "preview", commands.studies_preview,
                        "the plan of a launch (arms, conflicts, estimate, grant), creating nothing", common))
    launch = _add(studies, "launch", commands.studies_launch, "launch a study", common)
    _study_options(launch)
    launch.add_argument("--idempotency-key", help="reuse to make a retried launch return the same study")
    launch.add_argument("--override", action="store_true", help="reviewers: launch even over the grant")
    launch.add_argument("--reason", default="", help="why the override")
    listing = _add(studies, "list", commands.studies_list, "studies you may see", common)
    listing.add_argument("--kind", choices=STUDY_KINDS)
    listing.add_argument("--status")
    listing.add_argument("--idea")
    listing.add_argument("--area")
    listing.add_argument("--launched-by", help="username")
    listing.add_argument("--baseline")
    listing.add_argument("--limit", type=int, default=0)
    _add(studies, "show", commands.studies_show, "a study with its runs and results", common).add_argument("id", type=int)
    watch = _add(studies, "watch", commands.studies_watch, "progress of every run until the end, then the verdict", common)
    watch.add_argument("id", type=int)
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    watch.add_argument("--timeout", type=float, help="give up after this many seconds")
    _add(studies, "cancel", commands.studies_cancel, "cancel a study's live runs", common).add_argument("id", type=int)

    runs = _group(top, "runs", "runs: list, show, logs, metrics, compare, cancel")
    listing = _add(runs, "list", commands.runs_list, "runs you may see, across studies", common)
    listing.add_argument("--study", type=int)
    listing.add_argument("--idea")
    listing.add_argument("--area")
    listing.add_argument("--baseline")
    listing.add_argument("--status")
    listing.add_argument("--tag")
    listing.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                         help="resolved config value, e.g. optim.lr=0.002 (repeatable)")
    listing.add_argument("--ordering", help="a field or final.<metric>; '-' first for descending")
    listing.add_argument("--limit", type=int, default=0)
    _add(runs, "show", commands.runs_show, "one run with its attempts", common).add_argument("id", type=int)
    logs = _add(runs, "logs", commands.runs_logs, "the trainer's log of a run's attempt", common)
    logs.add_argument("id", type=int)
    logs.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    logs.add_argument("--follow", action="store_true", help="keep printing until the attempt ends")
    metrics = _add(runs, "metrics", commands.runs_metrics, "a metric's points", common)
    metrics.add_argument("id", type=int)
    metrics.add_argument("--name", required=True, help="e.g. val_loss, train_loss")
    metrics.add_argument("--max-points", type=int, help="downsample to at most this many points")
    metrics.add_argument("--csv", action="store_true", help="step,value lines")
    compare = _add(runs, "compare", commands.runs_compare, "final metrics and differing config keys", common)
    compare.add_argument("ids", type=int, nargs="+")
    _add(runs, "cancel", commands.runs_cancel, "cancel a live run", common).add_argument("id", type=int)

    baselines = _group(top, "baselines", "baselines: list, show")
    _add(baselines, "list", commands.baselines_list, "the latest version of every baseline", common)
    _add(baselines, "show", commands.baselines_show, "a baseline's versions and resolved config", common).add_argument("name")

    compute = _group(top, "compute", "compute: cycles, pools, request, requests, usage")
    _add(compute, "cycles", commands.compute_cycles, "review cycles, newest first", common)
    _add(compute, "pools", commands.compute_pools, "GPU pools", common)
    request = _add(compute, "request", commands.compute_request, "ask for GPU-hours", common)
    request.add_argument("--area", required=True)
    request.add_argument("--pool", required=True)
    request.add_argument("--hours", type=float, required=True, help="GPU-hours")
    request.add_argument("--justification", required=True)
    request.add_argument("--stage", default="pilot", choices=("pilot", "scale-up", "integration"))
    request.add_argument("--idea", help="for one idea (default: for the area)")
    request.add_argument("--cycle", type=int, help="cycle id (default: the one open for requests)")
    request.add_argument("--evidence", action="append", default=[], metavar="URL", help="a link (repeatable)")
    listing = _add(compute, "requests", commands.compute_requests, "compute requests you may see", common)
    listing.add_argument("--cycle", type=int, help="cycle id (default: the current one)")
    listing.add_argument("--area")
    listing.add_argument("--status", help="open, decided, approved, trimmed, refused (default: all)")
    listing.add_argument("--stage")
    listing.add_argument("--limit", type=int, default=0)
    usage = _add(compute, "usage", commands.compute_usage, "GPU-hours used per area, idea and pool", common)
    usage.add_argument("--cycle", type=int, help="cycle id (default: the current one)")
    usage.add_argument("--area")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = commands.Output(as_json=getattr(args, "json", False))
    try:
        return args.handler(args, out)
    except Unauthorized as error:
        print(f"flightdeck: {error.message} Create a token at /accounts/tokens/ and run `flightdeck login`.",
              file=sys.stderr)
    except (FlightdeckError, TimeoutError) as error:
        print(f"flightdeck: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `flightdeck runs list | head`
        sys.stderr.close()
    return 1
