"""The function a Slurm job runs (pickled by submitit, so it imports no Django): start the trainer in
its own process group with its output in the attempt log, pass termination signals on as SIGTERM so the
trainer checkpoints, and return its exit code. A rerun of a requeued job does nothing: Flightdeck keeps one
trainer per run and resumes in an attempt of its own (experiments/execution/backends/slurm.py)."""
from __future__ import annotations

import os
import signal
import subprocess

from experiments.execution import procguard


# Slurm reran the job after a requeue; the watching worker resumes the run in a new attempt instead.
REQUEUED_RERUN_EXIT = 3


def run_trainer(command: list[str], env: dict[str, str], cwd: str, log_path: str) -> int:
    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
        with open(log_path, "a") as log:
            log.write("slurm requeued this job; not starting the trainer again (a new attempt resumes the run)\n")
        return REQUEUED_RERUN_EXIT
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            procguard.wrap(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def forward(signum: int, frame: object) -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            os.killpg(process.pid, signal.SIGCONT)  # a suspended trainer must wake up to checkpoint
        except ProcessLookupError:
            pass

    # scancel and submitit's local cancel send SIGTERM / SIGINT; SIGUSR2 is Slurm's "time is nearly up".
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
        signal.signal(signum, forward)
    return process.wait()
