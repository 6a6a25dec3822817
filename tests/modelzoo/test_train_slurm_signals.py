"""The trainer under Slurm's stop signals: Slurm signals *every* process of a job (SIGUSR2 before the time limit,
SIGTERM on scancel/requeue), so the trainer must treat SIGUSR2 like SIGTERM and must still checkpoint when
wandb's own service process died of the same signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.modelzoo.train_runner import REPO, checkpoint_steps, status, train_command, train_env, wait_for
from tests.support.slurm_cluster import descendants

STEPS = 40


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpora")


def logged_step(out: Path) -> int:
    try:
        return json.loads((out / "status.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


@pytest.mark.parametrize("signum", [signal.SIGUSR2, signal.SIGTERM], ids=["time-limit warning", "scancel"])
def test_a_signal_to_every_process_of_the_job_still_ends_in_a_checkpoint(signum, data_cache: Path, tmp_path: Path):
    command = train_command(tmp_path, {"train.max_steps": STEPS}, "--wandb-id", "slurmsig1", wandb_mode="offline")
    process = subprocess.Popen(command, env=train_env(data_cache), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: logged_step(tmp_path) >= 2 or process.poll() is not None, what="step 2")
    helpers = descendants(process.pid)
    assert helpers, "wandb's service process did not start; nothing was tested"
    for pid in [process.pid, *helpers]:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr[-2000:]
    stopped = status(tmp_path)
    assert stopped["status"] == "preempted", stopped
    assert 2 <= stopped["step"] < STEPS, "the run finished before the signal arrived; nothing was tested"
    assert checkpoint_steps(tmp_path)[-1] == stopped["step"]
