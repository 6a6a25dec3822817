"""Helpers for tests that drive ``python -m modelzoo.train`` as a subprocess, the way the platform does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# tiny-ci shrunk further so a step takes well under a second on two CPU cores.
FAST = {
    "train.batch_size": 2,
    "train.seq_len": 32,
    "train.max_steps": 12,
    "train.log_every": 1,
    "train.eval_every": 4,
    "train.eval_batches": 1,
    "train.checkpoint_every": 4,
    "train.keep_checkpoints": 3,
}


def train_command(out: Path, overrides: dict[str, Any] | None = None, *extra: str, recipe: str = "tiny-ci",
                  wandb_mode: str | None = "disabled") -> list[str]:
    """The CLI call for the FAST tiny-ci run plus ``overrides``; ``wandb_mode=None`` leaves the flag out."""
    sets = []
    for key, value in {**FAST, **(overrides or {})}.items():
        sets += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    mode = ["--wandb-mode", wandb_mode] if wandb_mode else []
    return [sys.executable, "-m", "modelzoo.train", "--recipe", recipe, *sets, "--out", str(out), *mode, *extra]


def train_env(data_cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    # One thread: the tiny test model runs several times faster than with two threads contending for two cores.
    env.update(FLIGHTDECK_DATA_CACHE=str(data_cache), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)
    return env


def run_train(out: Path, data_cache: Path, overrides: dict[str, Any] | None = None, *extra: str,
              env: dict[str, str] | None = None, **options: Any) -> subprocess.CompletedProcess:
    """Run the trainer to completion; ``options`` go to :func:`train_command`."""
    return subprocess.run(train_command(out, overrides, *extra, **options), env=env or train_env(data_cache), cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def start_train(out: Path, data_cache: Path, overrides: dict[str, Any] | None = None, *extra: str,
                env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(train_command(out, overrides, *extra), env=env or train_env(data_cache), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def metrics(out: Path) -> list[dict[str, Any]]:
    path = out / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def status(out: Path) -> dict[str, Any]:
    return json.loads((out / "status.json").read_text())


def wait_for(condition, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def checkpoint_steps(out: Path) -> list[int]:
    root = out / "checkpoints"
    return sorted(int(p.name.split("-")[1]) for p in root.glob("step-*") if (p / "COMPLETE").exists())
