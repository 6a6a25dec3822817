"""What a trainer process gets: command line, environment and files, built from an attempt.

Follows the trainer CLI contract in docs/contracts.md; nothing here depends on the backend.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from experiments.execution import runfiles
from experiments.execution.slots import cuda_visible_devices
from experiments.models import Attempt

# Mark trainer processes so orphans can be found and killed. The runs directory tells deployments sharing
# a host apart (attempt ids of two databases overlap), e.g. a test suite next to a running site.
ATTEMPT_ENV = "FLIGHTDECK_ATTEMPT_ID"
HOST_ENV = "FLIGHTDECK_ATTEMPT_HOST"
DEPLOYMENT_ENV = "FLIGHTDECK_ATTEMPT_RUNS_DIR"


@dataclass(frozen=True)
class TrainerLaunch:
    command: list[str]
    env: dict[str, str]
    cwd: str
    run_dir: Path
    log_path: Path


def base_command(recipe: str, overrides: dict, out: Path) -> list[str]:
    """``python -m modelzoo.train`` for one config; ``--resume`` always, because without a complete
    checkpoint the trainer simply starts from step 0."""
    command = [sys.executable, "-m", "modelzoo.train", "--recipe", recipe]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    return command + ["--out", str(out), "--resume"]


def trainer_command(attempt: Attempt) -> list[str]:
    run = attempt.run
    study = run.study
    command = base_command(run.recipe, run.overrides, run.run_dir) + [
        "--wandb-id", run.public_id,
        "--wandb-project", study.baseline.name,
        "--wandb-group", study.label,
        "--wandb-mode", settings.FLIGHTDECK_WANDB_MODE,
    ]
    if run.wandb_tags:
        command += ["--wandb-tags", ",".join(run.wandb_tags)]
    return command


def trainer_launch(attempt: Attempt) -> TrainerLaunch:
    run_dir = attempt.run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            ATTEMPT_ENV: str(attempt.pk),
            HOST_ENV: attempt.host,
            DEPLOYMENT_ENV: str(settings.FLIGHTDECK_RUNS_DIR),
            "CUDA_VISIBLE_DEVICES": cuda_visible_devices(attempt.slot),
            "WANDB_DIR": str(run_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not settings.FLIGHTDECK_GPUS:
        # CPU slots share the host's cores; without a cap every trainer would spawn a thread per core.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, settings.FLIGHTDECK_SLOTS))))
    return TrainerLaunch(
        command=trainer_command(attempt),
        env=env,
        cwd=str(settings.BASE_DIR),
        run_dir=run_dir,
        log_path=attempt.log_path,
    )


def latest_checkpoint_step(run_dir: Path) -> int | None:
    """Step of the newest complete checkpoint (the trainer only renames finished ones into place)."""
    newest = runfiles.checkpoints(run_dir)[:1]
    return newest[0].step if newest else None


def code_revision() -> tuple[str, bool]:
    """(git sha, tree has uncommitted changes) of the code the trainer will run; ("", False) without git."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "", False
