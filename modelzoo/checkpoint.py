"""Atomic, self-validating checkpoints in ``<run>/checkpoints/step-N/``.

A checkpoint is written into a hidden temporary directory, every file is fsynced, the ``COMPLETE`` marker
is written last, and only then is the directory renamed to ``step-N`` (and its parent fsynced). A crash or
``kill -9`` at any point therefore leaves either no ``step-N`` or a complete one; directories without the
marker are ignored and temporary leftovers are swept on the next save.

A write that fails (disk full, quota, file size limit) removes its temporary directory at once, so the
space is free again for ``status.json``, and raises :class:`CheckpointWriteError`; the earlier checkpoints
are never touched, because old ones are only rotated out after a new one is complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from modelzoo.atomic_io import fsync_dir, sync_file, write_synced
from modelzoo.run_files import CHECKPOINT_DIR

MARKER = "COMPLETE"
STATE_FILE = "state.json"
# Test hook: when set to a step number, the writer of that step's checkpoint sleeps half-way through
# (after the tensors, before the marker and rename), so a test can kill -9 it at a known point.
PAUSE_ENV = "FLIGHTDECK_TEST_CHECKPOINT_PAUSE"
_PAUSE_SECONDS = 60
_TEMP_PREFIX = ".tmp-"
# What the kernel says when there is no room for a file; each gets a plain-words prefix for status.json.
DISK_FULL_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit exceeded",
}


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; nothing of it was kept and earlier checkpoints are intact."""


def os_error_behind(error: BaseException) -> OSError | None:
    """The OSError that caused ``error``: torch.save reports a failed write as a RuntimeError ("unexpected
    pos ...") whose context is the real OSError, and closing the file may raise a second one on top."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every complete checkpoint under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = CHECKPOINT_DIR.match(entry.name)
        if match and (entry / MARKER).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(root: Path) -> tuple[int, Path] | None:
    checkpoints = complete_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(root: Path, step: int, tensors: dict[str, Any], state: dict[str, Any], keep: int) -> Path:
    """Write ``tensors`` (one ``<name>.pt`` per key) and JSON ``state`` as ``root/step-<step>``; keep the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    if (final / MARKER).is_file():  # this exact state is already safely on disk
        return final
    for leftover in root.glob(_TEMP_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = root / f"{_TEMP_PREFIX}step-{step}-{os.getpid()}"
    try:
        staging.mkdir()
        _write_staging(staging, step, tensors, state)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        cause = os_error_behind(error)
        if cause is None:
            raise
        what = DISK_FULL_ERRORS.get(cause.errno, "write error")
        code = errno.errorcode.get(cause.errno, str(cause.errno))
        raise CheckpointWriteError(
            cause.errno, f"{what}: could not write checkpoint step-{step} to {root} ({os.strerror(cause.errno)}, {code})"
        ) from error
    if final.exists():  # a marker-less leftover of the same name; it never counted as a checkpoint
        shutil.rmtree(final)
    os.rename(staging, final)
    fsync_dir(root)
    for _, old in complete_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_staging(staging: Path, step: int, tensors: dict[str, Any], state: dict[str, Any]) -> None:
    for name, value in tensors.items():
        with open(staging / f"{name}.pt", "wb") as handle:
            torch.save(value, handle)
            sync_file(handle)
    if os.environ.get(PAUSE_ENV) == str(step):
        time.sleep(_PAUSE_SECONDS)
    write_synced(staging / STATE_FILE, json.dumps(state, indent=1).encode())
    write_synced(staging / MARKER, f"step {step}\n".encode())
    fsync_dir(staging)


def load_checkpoint(directory: Path, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors by name, state) of a complete checkpoint, tensors on the CPU."""
    tensors = {name: torch.load(directory / f"{name}.pt", map_location="cpu", weights_only=True) for name in names}
    return tensors, json.loads((directory / STATE_FILE).read_text())
