"""Fault drill: the disk fills up while a checkpoint is written.

The failure is a real kernel write error, never a mock: the run directory sits on a small tmpfs
(`mount -t tmpfs -o size=…`, root with CAP_SYS_ADMIN), or, where mounting is not permitted (an
unprivileged CI container), the trainer runs under RLIMIT_FSIZE so a checkpoint file cannot grow past
1 MiB (Python ignores SIGXFSZ, so the write fails with EFBIG). Each test prints which one it used.
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from experiments import services
from experiments.execution import launcher
from experiments.models import Run, RunStatus
from modelzoo.checkpoint import MARKER, latest_checkpoint, load_checkpoint
from tests.experiments.helpers import runs_when_done, wait_until
from tests.modelzoo.train_runner import REPO, start_train, train_command, train_env

pytestmark = pytest.mark.timeout(240)

MIB = 2**20
FILE_SIZE_LIMIT = 1 * MIB  # above metrics and logs, below optimizer.pt of tiny-ci (about 1.2 MB)
CHECKPOINT_TENSORS = ["model", "optimizer", "rng"]
# train_runner's FAST run, long enough that SIGTERM after the step-4 checkpoint stops it part-way.
LONGER = {"train.max_steps": 16}


def mount_tmpfs(path: Path, size: int) -> bool:
    """Mount a tmpfs of ``size`` bytes at ``path``; False where this container may not mount."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    return result.returncode == 0


def resize_tmpfs(path: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def unmount(path: Path) -> None:
    # Lazy: a trainer a failed test left behind must not turn the clean-up into a second error.
    subprocess.run(["umount", "--lazy", str(path)], capture_output=True)


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, resource.RLIM_INFINITY))


def used_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


@contextmanager
def full_disk(out: Path) -> Iterator[tuple[str, Callable[..., subprocess.CompletedProcess], Callable[[], None]]]:
    """Move the run directory ``out`` onto a filesystem with room for less than one more checkpoint.

    Yields (mechanism, run the trainer there, free the space). ``out`` keeps its path in both cases.
    """
    size = used_bytes(out) + MIB
    aside = out.with_name(out.name + "-aside")
    out.rename(aside)
    if mount_tmpfs(out, size):
        shutil.copytree(aside, out, dirs_exist_ok=True)
        shutil.rmtree(aside)
        try:
            yield "tmpfs", lambda command, env: _run(command, env), lambda: resize_tmpfs(out, 64 * MIB)
        finally:
            unmount(out)
        return
    out.rmdir()
    aside.rename(out)
    limited = {"on": True}
    yield ("RLIMIT_FSIZE", lambda command, env: _run(command, env, limited["on"]),
           lambda: limited.update(on=False))


def _run(command: list[str], env: dict[str, str], limit_size: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180,
                          preexec_fn=limit_file_size if limit_size else None)


def test_a_full_disk_at_a_checkpoint_fails_cleanly_and_the_run_resumes_once_space_is_freed(tmp_path: Path) -> None:
    data_cache, out = tmp_path / "corpora", tmp_path / "run"
    command = train_command(out, LONGER, "--resume")
    env = train_env(data_cache)
    # 1. A first stretch on a roomy disk, stopped (SIGTERM, as a preemption) once step-4 is checkpointed.
    first = start_train(out, data_cache, LONGER, "--resume")
    wait_until(lambda: (out / "checkpoints" / "step-4" / MARKER).is_file() or first.poll() is not None,
               timeout=120, what="the first checkpoint", interval=0.05)
    first.terminate()
    assert first.wait(timeout=60) == 0, first.stderr.read()
    assert json.loads((out / "status.json").read_text())["status"] == "preempted", "stopped before the end"
    kept_step, kept_dir = latest_checkpoint(out / "checkpoints")
    kept_names = sorted(path.name for path in (out / "checkpoints").iterdir())
    kept_files = {path.name: path.read_bytes() for path in kept_dir.iterdir()}

    with full_disk(out) as (mechanism, run, free_space):
        print(f"disk full simulated with {mechanism}")
        # 2. Resumed on a disk without room for the next checkpoint: a clean failure.
        failed = run(command, env)
        status = json.loads((out / "status.json").read_text())
        assert failed.returncode == 1, failed.stderr
        [error_line] = failed.stderr.strip().splitlines()
        expected = "disk full" if mechanism == "tmpfs" else "file size limit exceeded"
        errno_name = "ENOSPC" if mechanism == "tmpfs" else "EFBIG"
        assert error_line.startswith(f"error: {expected}: could not write checkpoint step-"), error_line
        assert errno_name in error_line and "the last good checkpoint is kept" in error_line
        assert status["status"] == "failed" and expected in status["reason"] and errno_name in status["reason"]
        assert "Traceback" not in failed.stderr
        # The earlier checkpoint is still the latest, byte for byte and loadable; nothing partial is left.
        assert latest_checkpoint(out / "checkpoints") == (kept_step, kept_dir)
        assert {path.name: path.read_bytes() for path in kept_dir.iterdir()} == kept_files
        tensors, state = load_checkpoint(kept_dir, CHECKPOINT_TENSORS)
        assert state["step"] == kept_step and tensors["model"]
        assert sorted(path.name for path in (out / "checkpoints").iterdir()) == kept_names
        assert not [path for path in out.rglob("*") if ".tmp-" in path.name]

        # 3. Space freed: the run resumes from that checkpoint and finishes.
        free_space()
        resumed = run(command, env)
        assert resumed.returncode == 0, resumed.stderr
        assert f"resumed from {kept_dir}" in (out / "train.log").read_text()
        assert json.loads((out / "status.json").read_text())["status"] == "succeeded"
        steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, LONGER["train.max_steps"] + 1)), "every step logged once, in order"


FAST = {
    "FLIGHTDECK_LEASE_SECONDS": "20",
    "FLIGHTDECK_MONITOR_SECONDS": "1",
    "FLIGHTDECK_WANDB_MODE": "disabled",
}


@pytest.mark.requires_postgres
def test_a_run_whose_disk_fills_at_a_checkpoint_fails_with_a_readable_reason_on_its_page(
        celery_processes, pic, make_idea, fast_baseline, tmp_path: Path) -> None:
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast", seeds=[0], max_steps=8,
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key])
    doomed = Run.objects.get(study=study, arms__name__startswith="+")
    # Room for the run's files and its step-2 checkpoint (about 1.8 MB), not for step-4 next to it.
    if not mount_tmpfs(doomed.run_dir, 3 * MIB):
        pytest.skip("mounting a tmpfs is not permitted here; the trainer-level drill above covers RLIMIT_FSIZE")
    try:
        celery_processes.worker(env=FAST)
        runs = {run.pk: run for run in wait_until(lambda: runs_when_done(study), timeout=180,
                                                  what="both runs to end")}
        doomed, healthy = runs.pop(doomed.pk), runs.popitem()[1]
        assert healthy.status == RunStatus.SUCCEEDED, "the other run's disk was fine"
        [attempt] = doomed.attempts.all()
        assert doomed.status == RunStatus.FAILED and attempt.state == RunStatus.FAILED and attempt.exit_code == 1
        assert attempt.reason.startswith("disk full: could not write checkpoint step-4"), attempt.reason
        assert "ENOSPC" in attempt.reason and "the last good checkpoint is kept" in attempt.reason
        assert "Traceback" not in attempt.log_tail
        assert launcher.latest_checkpoint_step(doomed.run_dir) == 2
        assert not [path for path in doomed.run_dir.rglob("*") if ".tmp-" in path.name]

        client = Client()
        client.force_login(pic)
        page = client.get(reverse("experiments:run_detail", args=[doomed.pk])).content.decode()
        assert "disk full: could not write checkpoint step-4" in page and "No space left on device" in page
    finally:
        unmount(doomed.run_dir)
