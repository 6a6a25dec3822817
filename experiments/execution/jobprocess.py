"""The function a Slurm job runs (pickled by submitit, so it imports no Django): start the trainer in
its own process group with its output in the attempt log, pass termination signals on as SIGTERM so the
trainer checkpoints, and return its exit code."""
from __future__ import annotations

import os
import signal
import subprocess

from experiments.execution import procguard


def run_trainer(command: list[str], env: dict[str, str], cwd: str, log_path: str) -> int:
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
        except ProcessLookupError:
            pass

    # scancel and submitit's local cancel send SIGTERM / SIGINT; SIGUSR2 is Slurm's "time is nearly up".
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
        signal.signal(signum, forward)
    return process.wait()
