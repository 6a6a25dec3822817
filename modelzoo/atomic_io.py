"""Durable file writes: fsync files and directories, and replace files atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def sync_file(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (a rename or a new file is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, payload: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(payload)
        sync_file(handle)


def replace_atomically(path: Path, payload: bytes) -> None:
    """Readers of ``path`` see either its old content or ``payload``, never a partial write."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_synced(temporary, payload)
    except OSError:
        temporary.unlink(missing_ok=True)  # e.g. a full disk: leave no half-written temporary behind
        raise
    os.replace(temporary, path)
    fsync_dir(path.parent)
