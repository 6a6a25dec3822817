"""Command line of the trainer (docs/contracts.md, "Trainer CLI"):

    python -m modelzoo.train --recipe NAME_OR_PATH [--set KEY=VALUE ...] --out DIR [--resume]
           [--wandb-project P] [--wandb-group G] [--wandb-tags a,b] [--wandb-id ID]
           [--wandb-mode offline|online|disabled]

Run under ``torchrun --nproc-per-node N -m modelzoo.train ...`` for data-parallel training.
Exit codes: 0 succeeded or cleanly preempted, 1 training failure, 2 bad input. A failure ends with one
line on stderr (the traceback of an unexpected error goes to ``DIR/train.log``) and ``status.json`` says
``failed`` with the reason and the last completed step; existing checkpoints are never touched.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from modelzoo.config import ConfigError, Recipe, apply_overrides, load_recipe
from modelzoo.run_files import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, RunDirError, RunFiles
from modelzoo.tracking import WANDB_MODES, TrackingOptions

log = logging.getLogger("modelzoo.train")
# Until train.log is open, log records go nowhere (not to Python's last-resort stderr handler): stderr
# carries exactly one line per failure.
log.addHandler(logging.NullHandler())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.train", description="Train a modelzoo recipe.")
    parser.add_argument("--recipe", required=True, help="recipe name (modelzoo/recipes/<name>.toml) or path to a TOML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a dotted config key; VALUE is parsed as JSON, else taken as a string")
    parser.add_argument("--out", required=True, type=Path, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint, if any")
    parser.add_argument("--wandb-project")
    parser.add_argument("--wandb-group")
    parser.add_argument("--wandb-tags", default="", help="comma-separated")
    parser.add_argument("--wandb-id", help="wandb run id (stable across resumes)")
    parser.add_argument("--wandb-mode", choices=WANDB_MODES,
                        help="default: WANDB_MODE, else online when WANDB_API_KEY is set, else offline")
    return parser


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. moe.latent_size=32")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def configure_logging(path: Path | None) -> None:
    log.setLevel(logging.INFO)
    log.propagate = False
    if path is not None:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)


def _fail(files: RunFiles, is_main: bool, message: str, step: int, max_steps: int) -> None:
    """Record a failure: one line on stderr, the reason in train.log and status.json (rank 0, when writable)."""
    one_line = " ".join(message.split())
    if is_main:
        print(f"error: {one_line}", file=sys.stderr)
        log.error(one_line)
        if files.out.is_dir():
            try:
                files.write_status("failed", step, max_steps, one_line)
            except OSError:
                pass  # the stderr line above already says what went wrong


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    files = RunFiles(args.out)
    try:
        recipe = apply_overrides(load_recipe(args.recipe), parse_overrides(args.set))
        files.ensure_writable()
    except (ConfigError, RunDirError) as error:
        _fail(files, int(os.environ.get("RANK", "0")) == 0, str(error), 0, 0)
        return EXIT_BAD_INPUT
    tracking = TrackingOptions(
        project=args.wandb_project,
        group=args.wandb_group,
        tags=tuple(tag for tag in args.wandb_tags.split(",") if tag),
        run_id=args.wandb_id,
        mode=args.wandb_mode,
    )
    return train(recipe, files, args.resume, tracking)


def train(recipe: Recipe, files: RunFiles, resume: bool, tracking: TrackingOptions) -> int:
    """Run training and map its outcome to the contract's exit code."""
    # Imported only here, after the cheap checks, so a mistyped recipe or key fails without loading torch.
    import torch

    from modelzoo.backends import BackendError
    from modelzoo.data import CorpusError
    from modelzoo.distributed import init_distributed, shutdown
    from modelzoo.trainer import IncompatibleCheckpoint, Run, RunOptions, StopRequest, TrainingFailure

    # cuBLAS reads this at its first call to choose deterministic workspaces.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    max_steps = recipe.train.max_steps
    ctx = init_distributed()
    configure_logging(files.log if ctx.is_main else None)
    run = Run(RunOptions(recipe, resume, tracking), ctx, files, StopRequest())
    try:
        # The ATen switch behind torch.use_deterministic_algorithms: the public function also imports all of
        # torch._inductor (2+ s of CPU per start) just to set a compiler flag, and modelzoo never compiles.
        # On CUDA, ops without a deterministic kernel warn instead of failing the run.
        torch._C._set_deterministic_algorithms(True, warn_only=ctx.device.type == "cuda")
        run.prepare()
        status = run.train()
        if ctx.is_main:
            print(f"{status} at step {run.step}/{max_steps}: {files.out}")
        return EXIT_OK
    except (ConfigError, CorpusError, IncompatibleCheckpoint, BackendError) as error:
        _fail(files, ctx.is_main, str(error), run.step, max_steps)
        return EXIT_BAD_INPUT
    except TrainingFailure as error:
        _fail(files, ctx.is_main, f"{error}; the last good checkpoint is kept", error.step, max_steps)
        return EXIT_FAILURE
    except Exception as error:  # noqa: BLE001 - any crash must still end in status "failed" and exit 1
        log.exception("training crashed")
        _fail(files, ctx.is_main, f"{type(error).__name__}: {error} (traceback in {files.log})", run.step, max_steps)
        return EXIT_FAILURE
    finally:
        shutdown(ctx)


if __name__ == "__main__":
    sys.exit(main())
