"""Executing one attempt on this worker: claim it, start the trainer, watch it until it exits.

Every ``FLIGHTDECK_MONITOR_SECONDS`` the watch loop upserts new metrics, extends the attempt's lease and
checks for a cancel request (SIGTERM to the trainer, SIGKILL after ``FLIGHTDECK_CANCEL_GRACE_SECONDS``);
every ``FLIGHTDECK_CHARGE_SECONDS`` it also charges the attempt's GPU-hours so far (``experiments.budget``).
If the lease was taken away (the reconciler decided this worker was lost) the trainer is killed at once,
because a new attempt is about to resume the same run directory.

A database outage (restart, failover) does not stop the trainer, which knows nothing about the database:
the loop drops the broken connection, keeps the metrics it could not write and retries with backoff;
once the database answers again the metrics catch up (upserts, so nothing is written twice) and the lease
is renewed. An outage shorter than ``FLIGHTDECK_LEASE_SECONDS`` therefore leaves no trace in the attempt.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection

from experiments import budget
from experiments.execution import attempts, dispatch, launcher, monitor, runfiles
from experiments.execution.attempts import ClaimOutcome
from experiments.execution.backends import TrainerBackend, TrainerHandle, backend_for
from experiments.execution.slots import host_slot_ids
from experiments.models import Attempt, RunStatus
from modelzoo.run_files import EXIT_BAD_INPUT, EXIT_OK, METRICS_FILE

log = logging.getLogger(__name__)

SLOT_RETRY_SECONDS = 5
MAX_DB_BACKOFF_SECONDS = 8.0
T = TypeVar("T")


def execute_attempt(attempt_id: int) -> None:
    """Run attempt ``attempt_id`` to its end if it is still queued; otherwise do nothing (duplicate message)."""
    backend_name = Attempt.objects.filter(pk=attempt_id).values_list("backend", flat=True).first()
    if backend_name is None:
        return
    backend = backend_for(backend_name)
    host = settings.FLIGHTDECK_HOST
    claim = attempts.attempt_claim(
        attempt_id, host=host, slot_ids=host_slot_ids() if backend.needs_slot else None, devices=backend.devices()
    )
    if claim.outcome is ClaimOutcome.NO_SLOT:
        if dispatch.send_start(attempt_id, backend_name, countdown=SLOT_RETRY_SECONDS):
            attempts.attempt_mark_enqueued(attempt_id)
        return
    if claim.outcome is ClaimOutcome.CLAIMED:
        Supervision(claim.attempt, backend, host).run()


class Supervision:
    def __init__(self, attempt: Attempt, backend: TrainerBackend, host: str):
        self.attempt = attempt
        self.run_row = attempt.run
        self.backend = backend
        self.host = host
        self.terminated_at: float | None = None
        self.parent_pid = os.getppid()

    def run(self) -> None:
        launch = launcher.trainer_launch(self.attempt)
        resumed_from = launcher.latest_checkpoint_step(launch.run_dir)
        try:
            handle = self.backend.start(launch)
        except Exception as error:  # noqa: BLE001 - an unstartable trainer fails this attempt, not the worker
            log.exception("attempt %s: could not start the trainer", self.attempt.pk)
            self._finish(RunStatus.FAILED, f"could not start the trainer: {error}", None, launch)
            return
        self.follow(handle, launch, resumed_from)

    def follow(self, handle: TrainerHandle, launch: launcher.TrainerLaunch, resumed_from: int | None) -> None:
        """Record the started trainer, watch it to its end and record the outcome; the trainer is killed on the
        way out whatever happens."""
        revision, dirty = launcher.code_revision()
        try:
            if not attempts.attempt_started(
                self.attempt.pk,
                pid=handle.pid,
                pgid=handle.pgid,
                external_id=handle.external_id,
                code_revision=revision,
                code_dirty=dirty,
                resumed_from_step=resumed_from,
            ):
                return  # taken away between claim and start (lease expired): the finally kills the trainer
            exit_code, lease_lost = self._watch(handle, monitor.MetricsTail(launch.run_dir / METRICS_FILE))
            if lease_lost:
                log.warning("attempt %s: lease lost, trainer killed", self.attempt.pk)
                return
            # The trainer's files are final now; only the database may still be briefly away.
            state, reason = self._retry_while_db_down(lambda: self._outcome(exit_code, handle, launch))
            self._retry_while_db_down(lambda: self._finish(state, reason, exit_code, launch))
        finally:
            handle.kill()  # also reaps whatever the trainer left behind in its process group

    def _watch(self, handle: TrainerHandle, tail: monitor.MetricsTail) -> tuple[int, bool]:
        """Poll until the trainer exits and all its metrics are written; returns (exit code, lease lost)."""
        pending: list[dict[str, Any]] = []  # read from metrics.jsonl, not yet in the database
        failures = 0
        while True:
            exit_code = handle.poll()
            pending += tail.read_new()
            try:
                beat = self._sync(pending)
                failures = 0
            except DatabaseError as error:
                failures += 1
                self._drop_connection(error)
                beat = None
            if beat is not None and not beat.alive:
                handle.kill()
                return -1, True
            if exit_code is not None and not pending:
                return exit_code, False
            self._stop_if_asked(handle, beat is not None and beat.cancel_requested)
            time.sleep(self._delay(failures))

    def _sync(self, pending: list[dict[str, Any]]) -> attempts.Heartbeat:
        """Write the pending metrics (emptying the list once they are in), renew the lease, charge if due."""
        monitor.ingest(self.run_row, pending)
        pending.clear()
        beat = attempts.attempt_heartbeat(self.attempt.pk, host=self.host)
        if beat.alive:
            budget.attempt_charge_if_due(self.attempt.pk)
        return beat

    def _drop_connection(self, error: DatabaseError) -> None:
        # Django keeps a broken connection object until the task ends; closing it makes the next query
        # open a fresh one, which is how the loop reconnects after a database restart.
        log.warning("attempt %s: database unavailable (%s); the trainer keeps running, retrying",
                    self.attempt.pk, " ".join(str(error).split()))
        connection.close()

    @staticmethod
    def _delay(failures: int) -> float:
        """The poll interval, doubled per consecutive database failure up to a cap that stays well inside the
        lease, so a returning database is noticed long before the reconciler would expire the attempt."""
        interval = settings.FLIGHTDECK_MONITOR_SECONDS
        cap = max(interval, min(MAX_DB_BACKOFF_SECONDS, settings.FLIGHTDECK_LEASE_SECONDS / 4))
        return min(interval * 2 ** failures, cap)

    def _retry_while_db_down(self, action: Callable[[], T]) -> T:
        """``action()``, retried while the database is unreachable for up to one lease; after that the
        reconciler owns the attempt anyway, so the error is raised."""
        deadline = time.monotonic() + settings.FLIGHTDECK_LEASE_SECONDS
        failures = 0
        while True:
            try:
                return action()
            except DatabaseError as error:
                failures += 1
                if time.monotonic() > deadline:
                    raise
                self._drop_connection(error)
                time.sleep(self._delay(failures))

    def _stop_if_asked(self, handle: TrainerHandle, cancel_requested: bool) -> None:
        # Fallback where the pool's own parent-death signal is unavailable (not Linux): a pool process whose
        # worker died is re-parented; wind the trainer down so it checkpoints and the run resumes elsewhere.
        worker_gone = os.getppid() != self.parent_pid
        if (cancel_requested or worker_gone) and self.terminated_at is None:
            handle.terminate()
            self.terminated_at = time.monotonic()
        elif self.terminated_at and time.monotonic() - self.terminated_at > settings.FLIGHTDECK_CANCEL_GRACE_SECONDS:
            handle.kill()

    def _outcome(self, exit_code: int, handle: TrainerHandle, launch: launcher.TrainerLaunch) -> tuple[str, str]:
        cancel_requested = Attempt.objects.filter(pk=self.attempt.pk, cancel_requested_at__isnull=False).exists()
        status = monitor.read_status(launch.run_dir)
        said = status.get("status")
        reason = str(status.get("reason") or "")
        if exit_code == EXIT_OK and said == "succeeded":
            # Success wins over a cancel that arrived after the last step: the result is kept.
            finished = reason or f"finished {status.get('step', '?')} steps"
            if cancel_requested:
                finished += "; the cancel request came after training had finished"
            return RunStatus.SUCCEEDED, finished
        if cancel_requested:
            return RunStatus.CANCELLED, f"cancelled at step {status.get('step', '?')}"
        if exit_code == EXIT_OK and said == "preempted":
            return RunStatus.PREEMPTED, reason or f"preempted at step {status.get('step', '?')}; resuming"
        interruption = handle.interruption()
        if interruption:
            return RunStatus.PREEMPTED, interruption
        if exit_code == EXIT_BAD_INPUT:
            return RunStatus.FAILED, f"the trainer refused its input: {reason or 'see the log'}"
        backend_reason = handle.failure_reason()
        if backend_reason:
            return RunStatus.FAILED, backend_reason
        if exit_code < 0:
            return RunStatus.FAILED, f"the trainer was killed by signal {-exit_code}"
        return RunStatus.FAILED, reason or f"the trainer exited with code {exit_code} (status {said or 'missing'})"

    def _finish(self, state: str, reason: str, exit_code: int | None, launch: launcher.TrainerLaunch) -> None:
        tail = runfiles.log_tail(launch.log_path) if state == RunStatus.FAILED else ""
        attempts.attempt_finish(
            self.attempt.pk, host=self.host, state=state, reason=reason, exit_code=exit_code, log_tail=tail
        )
