"""Reading a run directory's files for people: the tail of an attempt's log (run page, failed attempts) and checkpoints."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from modelzoo.run_files import CHECKPOINT_DIR, CHECKPOINTS_DIR

LOG_TAIL_LINES = 50


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist, e.g. on another host)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints (the trainer renames finished ones into ``checkpoints/step-N``), newest first."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [Checkpoint(int(match[1]), entry) for entry in folder.iterdir()
             if entry.is_dir() and (match := CHECKPOINT_DIR.match(entry.name))]
    return sorted(found, key=lambda checkpoint: checkpoint.step, reverse=True)
