"""The slurm backend: the trainer runs as a Slurm job submitted through submitit; this worker only
watches the job and the shared run directory. ``FLIGHTDECK_SLURM`` (config/settings.py) picks the
executor ("slurm", or "local" for submitit's LocalExecutor), folder, partition and limits."""
from __future__ import annotations

import submitit
from django.conf import settings

from experiments.execution import orphans
from experiments.execution.jobprocess import run_trainer
from experiments.execution.launcher import TrainerLaunch
from experiments.models import Attempt

FAILED_JOB_EXIT = 1


class SlurmJob:
    pid = None
    pgid = None

    def __init__(self, job: submitit.Job):
        self.job = job
        self.external_id = str(job.job_id)
        self._failure = ""

    def poll(self) -> int | None:
        if not self.job.done():
            return None
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


def make_executor(name: str) -> submitit.Executor:
    config = settings.FLIGHTDECK_SLURM
    folder = config["folder"] / name
    if config["executor"] == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=config["timeout_min"], gpus_per_node=0)
        return executor
    executor = submitit.SlurmExecutor(folder=folder)
    parameters = {"time": config["timeout_min"], "gpus_per_node": config["gpus_per_node"], "job_name": name}
    if config["partition"]:
        parameters["partition"] = config["partition"]
    executor.update_parameters(**parameters)
    return executor


class SlurmBackend:
    needs_slot = False  # Slurm allocates the devices

    def devices(self) -> int:
        return max(1, settings.FLIGHTDECK_SLURM["gpus_per_node"])

    def start(self, launch: TrainerLaunch) -> SlurmJob:
        executor = make_executor(launch.run_dir.name)
        job = executor.submit(run_trainer, launch.command, launch.env, launch.cwd, str(launch.log_path))
        return SlurmJob(job)

    def stop_lost(self, attempt: Attempt, *, host: str) -> None:
        if attempt.external_id and settings.FLIGHTDECK_SLURM["executor"] != "local":
            submitit.SlurmJob(folder=settings.FLIGHTDECK_SLURM["folder"] / attempt.run.public_id,
                              job_id=attempt.external_id).cancel(check=False)
        elif attempt.host == host:
            orphans.kill_attempt(attempt.pk)
