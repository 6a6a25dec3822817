"""Weights & Biases logging for a training run.

Offline by default so a run never needs the network; online when ``WANDB_API_KEY`` is set; ``--wandb-mode``
(or ``WANDB_MODE``) overrides both. The wandb run id is stable across resumes (``--wandb-id``, else the id
stored in the checkpoint) and the run is opened with ``resume="allow"``, so a preempted and resumed run
continues one history. wandb's files live in ``<run dir>/wandb``.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelzoo.config import ConfigError

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")
DEFAULT_PROJECT = "flightdeck"


@dataclass(frozen=True)
class TrackingOptions:
    project: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    run_id: str | None = None
    mode: str | None = None


def resolve_mode(requested: str | None) -> str:
    """``--wandb-mode`` if given, else ``WANDB_MODE``, else online with an API key and offline without."""
    mode = requested or os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    if mode not in WANDB_MODES:
        raise ConfigError(f"WANDB_MODE: must be one of {', '.join(WANDB_MODES)}, got {mode!r}")
    return mode


def new_run_id() -> str:
    """A fresh wandb-style run id: 8 lowercase letters and digits (wandb itself no longer exports its helper)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Tracker:
    """A wandb run, or nothing at all when the mode is "disabled" (wandb is then never imported)."""

    def __init__(self, options: TrackingOptions, run_id: str, run_dir: Path, config: dict[str, Any]) -> None:
        self.mode = resolve_mode(options.mode)
        self._run = None
        if self.mode == "disabled":
            return
        import wandb

        self._run = wandb.init(
            project=options.project or DEFAULT_PROJECT,
            group=options.group,
            tags=list(options.tags) or None,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=config,
            mode=self.mode,
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log(self, record: dict[str, Any], step: int) -> None:
        if self._run is not None:
            self._mirror(lambda run: run.log({k: v for k, v in record.items() if v is not None and k != "step"},
                                             step=step))

    def finish(self, exit_code: int) -> None:
        if self._run is not None:
            self._mirror(lambda run: run.finish(exit_code=exit_code))

    def _mirror(self, call: Callable[[Any], None]) -> None:
        """wandb only mirrors metrics.jsonl, so losing it never fails training. It does get lost: a Slurm stop
        (scancel, requeue, time limit) sends SIGTERM to every process of the job, wandb's service included, while
        the trainer still finishes its step and checkpoints. Mirroring stops after the first failure."""
        try:
            call(self._run)
        except Exception as error:  # noqa: BLE001 - wandb raises many kinds; none may stop a run
            log.warning("wandb stopped mirroring this run (%s: %s); metrics.jsonl has everything",
                        type(error).__name__, error)
            self._run = None
