"""The slurm backend: the trainer runs as a Slurm job submitted through submitit; this worker only
watches the job and the shared run directory. ``FLIGHTDECK_SLURM`` (config/settings.py) picks the
executor ("slurm", or "local" for submitit's LocalExecutor), folder, partition, limits and the TRES that
GPU-hours are charged for.

On a cluster the job's fate is read from Slurm itself (:mod:`slurm_cli`), not from submitit's files:
- the trainer's own exit (COMPLETED) ends the attempt as the trainer's ``status.json`` says — a job warned
  of its time limit (``--signal``) checkpoints and exits ``preempted``, and a new attempt resumes it;
- a job Slurm requeued (``scontrol requeue``, preemption, a failed node) or ended for the cluster's reasons
  (NODE_FAIL, TIMEOUT, PREEMPTED, BOOT_FAIL) is *interrupted*: Flightdeck cancels what Slurm would rerun
  and resumes the run in a new attempt of its own, so one run has exactly one live job at a time;
- its GPU-hours come from ``sacct``: elapsed × allocated TRES of every incarnation.
"""
from __future__ import annotations

from datetime import datetime

import submitit
from django.conf import settings

from experiments.execution import orphans
from experiments.execution.backends import UsageSegment
from experiments.execution.backends import slurm_cli
from experiments.execution.jobprocess import run_trainer
from experiments.execution.launcher import TrainerLaunch
from experiments.models import Attempt

FAILED_JOB_EXIT = 1
# Ended by the cluster, not by the trainer: resumable from the last checkpoint.
INTERRUPTED_STATES = frozenset({"NODE_FAIL", "TIMEOUT", "PREEMPTED", "BOOT_FAIL"})


class SubmititJob:
    """A job as submitit sees it: done once its result file exists (what the LocalExecutor offers)."""

    pid = None
    pgid = None

    def __init__(self, job: submitit.Job):
        self.job = job
        self.external_id = str(job.job_id)
        self._failure = ""
        self._interruption = ""

    def poll(self) -> int | None:
        if not self.job.done():
            return None
        return self._result()

    def _result(self) -> int:
        try:
            return int(self.job.result())
        except Exception as error:  # noqa: BLE001 - submitit wraps every job failure (killed, node lost, ...)
            self._failure = f"slurm job {self.external_id} failed: {str(error).strip().splitlines()[-1][:200]}"
            return FAILED_JOB_EXIT

    def terminate(self) -> None:
        self.job.cancel(check=False)

    def kill(self) -> None:
        self.job.cancel(check=False)

    def failure_reason(self) -> str:
        return self._failure

    def interruption(self) -> str:
        return self._interruption


class SlurmJob(SubmititJob):
    """A job on a real cluster, watched through the controller and the accounting database."""

    def __init__(self, job: submitit.Job):
        super().__init__(job)
        self._requeue_cancelled = False

    def poll(self) -> int | None:
        status = slurm_cli.job_status(self.external_id)
        if status is None:
            return None  # the cluster does not answer right now; the attempt's lease keeps it watched
        if status.restarts and not status.final:
            # Slurm put the job back in its queue. Once the old incarnation has exited (checkpointed on its
            # SIGTERM), cancel the rerun: Flightdeck resumes the run in a new attempt instead.
            if status.state in slurm_cli.WAITING_STATES and not self._requeue_cancelled:
                slurm_cli.cancel(self.external_id)
                self._requeue_cancelled = True
                why = status.reason or status.state
                self._interruption = f"slurm requeued job {self.external_id} ({why}); resuming"
            return None
        if not status.final:
            return None
        if status.restarts:
            self._interruption = self._interruption or f"slurm requeued job {self.external_id}; resuming"
            return FAILED_JOB_EXIT
        if status.state in INTERRUPTED_STATES:
            self._interruption = f"slurm job {self.external_id} ended {status.state}; resuming"
            return FAILED_JOB_EXIT
        if status.state in ("COMPLETED", "CANCELLED") and self.job.paths.result_pickle.exists():
            return self._result()
        self._failure = f"slurm job {self.external_id} ended {status.state}" + (
            f" ({status.reason})" if status.reason else "")
        return FAILED_JOB_EXIT


def make_executor(name: str) -> submitit.Executor:
    config = settings.FLIGHTDECK_SLURM
    folder = config["folder"] / name
    if config["executor"] == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=config["timeout_min"], gpus_per_node=0)
        return executor
    executor = submitit.SlurmExecutor(folder=folder)
    parameters = {
        "time": config["timeout_min"],
        "job_name": name,
        # The warning before the time limit (SIGUSR2; the trainer checkpoints) must leave time to save.
        "signal_delay_s": config["signal_delay_s"],
        # Requeueable, so an operator's `scontrol requeue` or requeue-preemption may stop it (see above).
        "additional_parameters": {"requeue": True},
    }
    if config["gpus_per_node"]:
        parameters["gpus_per_node"] = config["gpus_per_node"]
    for key in ("partition", "account"):
        if config[key]:
            parameters[key] = config[key]
    executor.update_parameters(**parameters)
    return executor


class SlurmBackend:
    needs_slot = False  # Slurm allocates the devices

    def devices(self) -> int:
        return max(1, settings.FLIGHTDECK_SLURM["gpus_per_node"])

    def start(self, launch: TrainerLaunch) -> SubmititJob:
        executor = make_executor(launch.run_dir.name)
        job = executor.submit(run_trainer, launch.command, launch.env, launch.cwd, str(launch.log_path))
        return SubmititJob(job) if settings.FLIGHTDECK_SLURM["executor"] == "local" else SlurmJob(job)

    def stop_lost(self, attempt: Attempt, *, host: str) -> None:
        if attempt.external_id and settings.FLIGHTDECK_SLURM["executor"] != "local":
            slurm_cli.cancel(attempt.external_id)
        elif attempt.host == host:
            orphans.kill_attempt(attempt.pk)

    def usage(self, attempt: Attempt, *, now: datetime) -> list[UsageSegment] | None:
        """The attempt's job as ``sacct`` accounted it: one segment per incarnation, devices = the allocated
        count of the charged TRES (``gres/gpu`` on a GPU cluster); [] while the job waits. None when sacct cannot
        tell (LocalExecutor, not submitted, accounting unreachable): the caller then charges the worker's clock."""
        if not attempt.external_id or settings.FLIGHTDECK_SLURM["executor"] == "local":
            return None
        segments = slurm_cli.job_segments(attempt.external_id)
        if segments is None:
            return None
        tres = settings.FLIGHTDECK_SLURM["charge_tres"]
        return [UsageSegment(start=segment.start, end=min(segment.end, now), devices=segment.tres.get(tres, 0))
                for segment in segments if segment.elapsed_s > 0 and segment.tres.get(tres, 0) > 0]
