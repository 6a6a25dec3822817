"""An attempt's whole log (the trainer's stdout and stderr), read in chunks by byte offset so a client can page
through it or follow it while the attempt runs (``GET /api/v1/runs/{id}/logs/``)."""
from __future__ import annotations

from dataclasses import dataclass

from experiments.models import LIVE_STATES, Attempt, RunStatus

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class LogChunk:
    attempt: int  # the attempt's number
    offset: int
    next_offset: int
    text: str
    complete: bool  # the attempt has ended and nothing is left to read


def attempt_log_chunk(attempt: Attempt, *, offset: int = 0, limit: int = CHUNK_BYTES) -> LogChunk:
    """Up to ``limit`` bytes of the attempt's log from ``offset``, ending at a line break when the chunk is cut
    short (so no character or line is split between chunks). Where the log file is not on this host (another
    worker machine), the tail kept on the attempt row stands in for it."""
    ended = attempt.state not in (*LIVE_STATES, RunStatus.PREEMPTED)
    try:
        with attempt.log_path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        tail = attempt.log_tail.encode() if offset == 0 else b""
        return LogChunk(attempt.number, offset, offset + len(tail), tail.decode(), ended)
    more = len(data) > limit
    data = data[:limit]
    if more:
        data = _whole_lines_or_characters(data)
    return LogChunk(attempt.number, offset, offset + len(data), data.decode(errors="replace"), ended and not more)


def _whole_lines_or_characters(data: bytes) -> bytes:
    """``data`` up to its last line break; a chunk inside one very long line ends before a split UTF-8 character."""
    if b"\n" in data:
        return data[: data.rindex(b"\n") + 1]
    for cut in range(4):  # a UTF-8 character is at most 4 bytes
        try:
            (data[: len(data) - cut]).decode()
            return data[: len(data) - cut]
        except UnicodeDecodeError:
            continue
    return data
