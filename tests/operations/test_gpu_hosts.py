"""Adding GPU hosts with `platform/add-gpu-host`: two workers with disjoint GPU sets on this machine share a
study's runs, each leasing only its own GPUs, and the trainers fall back to the CPU cleanly."""
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from experiments.execution import orphans
from experiments import services as experiment_services
from experiments.models import Attempt, RunStatus, SlotLease
from ideas import services as idea_services
from tests.experiments.conftest import FAST_OVERRIDES
from tests.experiments.helpers import runs_when_done, wait_until
from tests.support.celery_processes import CeleryLauncher, CeleryProcess

ADD_GPU_HOST = Path(__file__).resolve().parents[2] / "platform" / "add-gpu-host"
GPU_SETS = {"gpu-a": {0, 1}, "gpu-b": {2, 3}}



def add_gpu_host(launcher: CeleryLauncher, name: str, gpus: set[int]) -> CeleryProcess:
    """Exactly the documented command, plus the flags that make a test worker start faster."""
    command = [str(ADD_GPU_HOST), name, ",".join(map(str, sorted(gpus))),
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    # One thread per trainer: four of them share this machine's cores.
    return launcher.worker_from_command(command, node=f"{name}@{socket.gethostname()}",
                                        env={"FLIGHTDECK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})


def cuda_visible_devices_of_trainers() -> dict[int, str]:
    """attempt id → CUDA_VISIBLE_DEVICES, for the trainer processes alive right now."""
    seen = {}
    for process in orphans.trainer_processes():
        try:
            raw = Path(f"/proc/{process.pid}/environ").read_bytes()
        except OSError:  # exited meanwhile
            continue
        env = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
        if b"CUDA_VISIBLE_DEVICES" in env:
            seen[process.attempt_id] = env[b"CUDA_VISIBLE_DEVICES"].decode()
    return seen


@pytest.mark.parametrize(("args", "complaint"), [
    ([], "NAME and GPUS are required"),
    (["gpu 07", "0"], "NAME must be"),
    (["gpu-07", "0,x"], "GPUS must be comma-separated GPU indices"),
    (["gpu-07", ""], "GPUS must be comma-separated GPU indices"),
    (["gpu-07", "0,1,01"], "GPUS lists a GPU twice"),
])
def test_add_gpu_host_refuses_bad_arguments_without_starting_a_worker(args, complaint):
    result = subprocess.run([str(ADD_GPU_HOST), *args], capture_output=True, text=True, timeout=30)

    assert result.returncode == 2
    assert complaint in result.stderr and "usage:" in result.stderr


@pytest.mark.timeout(420)
def test_two_gpu_hosts_share_a_study_each_on_its_own_gpus(celery_processes):
    for name, gpus in GPU_SETS.items():
        add_gpu_host(celery_processes, name, gpus)
    staff = User.objects.create_user("stella", is_staff=True)
    area = idea_services.area_create(slug="ops", name="Operations", pic=staff, by=staff)
    idea = idea_services.idea_create(submitter=staff, area=area, title="Lower LR", summary="Steadier.",
                                     recipe_patch={"optim.lr": 0.002})
    experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides=FAST_OVERRIDES)

    study = experiment_services.study_launch(user=staff, kind="ablation", baseline="tiny-fast", ideas=[idea.key],
                                             seeds=[0, 1], max_steps=4)
    devices_seen: dict[int, str] = {}

    def finished() -> list:
        devices_seen.update(cuda_visible_devices_of_trainers())
        return runs_when_done(study)

    runs = wait_until(finished, timeout=390, what="the study's four runs to finish", interval=0.2)

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 4
    attempts = list(Attempt.objects.filter(run__study=study))
    assert len(attempts) == 4
    assert {attempt.host for attempt in attempts} == set(GPU_SETS), "the runs did not spread over both hosts"
    on_slot = defaultdict(list)
    for attempt in attempts:
        assert attempt.slot in GPU_SETS[attempt.host], f"{attempt.host} used GPU {attempt.slot}"
        on_slot[(attempt.host, attempt.slot)].append((attempt.started_at, attempt.finished_at))
    for (host, slot), periods in on_slot.items():
        periods.sort()
        for (_, first_end), (second_start, _) in zip(periods, periods[1:]):
            assert first_end <= second_start, f"GPU {slot} of {host} was given to two runs at once"
    assert not SlotLease.objects.exists()
    # Each trainer saw only its own GPU and, on this machine without CUDA, trained on the CPU.
    assert devices_seen, "no trainer process was caught running"
    for attempt in attempts:
        if attempt.pk in devices_seen:
            assert devices_seen[attempt.pk] == str(attempt.slot)
    for run in runs:
        assert "device cpu" in (run.run_dir / "train.log").read_text()
