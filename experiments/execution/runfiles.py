"""Reading a run directory's files for people: an attempt's log (its tail for the run page and failed attempts,
or all of it in chunks for the API) and checkpoints."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from modelzoo.run_files import CHECKPOINT_DIR, CHECKPOINTS_DIR

LOG_TAIL_LINES = 50
LOG_CHUNK_BYTES = 64 * 1024


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist, e.g. on another host)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""


@dataclass(frozen=True)
class LogRead:
    text: str
    next_offset: int
    at_end: bool  # nothing more in the file now


def log_chunk(path: Path, *, offset: int, limit: int = LOG_CHUNK_BYTES) -> LogRead | None:
    """Up to ``limit`` bytes of a log from byte ``offset``, ending at a line break when the chunk is cut short
    (so no line or character is split between chunks); None when the file does not exist (e.g. on another host)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        return None
    more = len(data) > limit
    data = _whole_lines_or_characters(data[:limit]) if more else data
    return LogRead(data.decode(errors="replace"), offset + len(data), not more)


def _whole_lines_or_characters(data: bytes) -> bytes:
    """``data`` up to its last line break; a chunk inside one very long line ends before a split UTF-8 character."""
    if b"\n" in data:
        return data[: data.rindex(b"\n") + 1]
    for cut in range(4):  # a UTF-8 character is at most 4 bytes
        try:
            data[: len(data) - cut].decode()
            return data[: len(data) - cut]
        except UnicodeDecodeError:
            continue
    return data


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def size_bytes(self) -> int:
        return sum(entry.stat().st_size for entry in self.path.rglob("*") if entry.is_file())

    @property
    def export_command(self) -> str:
        """Writes a transformers-loadable copy (``modelzoo.export.from_hf`` or AutoModel reads it back)."""
        return f"python -m modelzoo.export --checkpoint {self.path} --to hf {self.path.parent.parent}/hf-step-{self.step}"


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints (the trainer renames finished ones into ``checkpoints/step-N``), newest first."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [Checkpoint(int(match[1]), entry) for entry in folder.iterdir()
             if entry.is_dir() and (match := CHECKPOINT_DIR.match(entry.name))]
    return sorted(found, key=lambda checkpoint: checkpoint.step, reverse=True)
