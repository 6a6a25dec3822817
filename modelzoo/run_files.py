"""The files a run directory holds (docs/contracts.md): config.json, status.json, metrics.jsonl, train.log,
tokenizer.json (subword tokenizers only) and the checkpoints/ folder. Only the rank-0 process writes them.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from modelzoo.atomic_io import replace_atomically, sync_file

STATUSES = ("running", "succeeded", "failed", "preempted")

# The run directory's names: the trainer writes them, the platform's workers and pages read them.
CONFIG_FILE, STATUS_FILE, METRICS_FILE, LOG_FILE, CHECKPOINTS_DIR = (
    "config.json", "status.json", "metrics.jsonl", "train.log", "checkpoints",
)
TOKENIZER_FILE = "tokenizer.json"  # subword tokenizers only: the one the run's shards were made with
# A complete checkpoint is a directory ``checkpoints/step-<N>`` (written under a temporary name, then renamed).
CHECKPOINT_DIR = re.compile(r"^step-(\d+)$")
# The trainer's exit codes: training failed (status.json says why), or its input was refused (one stderr line).
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class RunDirError(OSError):
    """The output directory cannot be created or written."""


class RunFiles:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.config = out / CONFIG_FILE
        self.status = out / STATUS_FILE
        self.metrics = out / METRICS_FILE
        self.log = out / LOG_FILE
        self.checkpoints = out / CHECKPOINTS_DIR
        self.tokenizer = out / TOKENIZER_FILE

    def ensure_writable(self) -> None:
        """Create the directory and prove a file can be written there, or raise :class:`RunDirError`."""
        probe = self.out / f".write-probe-{os.getpid()}"
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise RunDirError(f"--out: cannot write to {self.out}: {error.strerror or error}") from None

    def write_config(self, recipe_dict: dict[str, Any], config_hash: str) -> None:
        payload = {"recipe": recipe_dict, "hash": config_hash}
        replace_atomically(self.config, (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())

    def write_tokenizer(self, payload: bytes) -> None:
        replace_atomically(self.tokenizer, payload)

    def write_status(self, status: str, step: int, max_steps: int, reason: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        payload = {
            "status": status,
            "step": step,
            "max_steps": max_steps,
            "reason": reason,
            "updated": time.time(),
            "pid": os.getpid(),
        }
        replace_atomically(self.status, (json.dumps(payload) + "\n").encode())

    def append_metrics(self, record: dict[str, Any]) -> None:
        # Non-finite floats are not JSON; they are written as null so every line stays parseable.
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.metrics, "ab") as handle:
            handle.write((json.dumps(clean) + "\n").encode())
            sync_file(handle)

    def truncate_metrics(self, last_step: int) -> None:
        """Drop lines for steps after ``last_step`` (and any torn last line), so a resumed run re-logs them once."""
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
                kept.append(line + "\n")
        replace_atomically(self.metrics, "".join(kept).encode())
