"""Runs of ``python -m modelzoo.train`` compared with one uninterrupted run: after SIGTERM + --resume losses
continue bit-identically, metrics.jsonl holds one line per step across resumes, a kill -9 during a checkpoint
write leaves the previous one usable, and two DDP processes compute the same first step as one process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modelzoo.train_runner import (
    FAST,
    checkpoint_steps,
    metrics,
    run_train,
    start_train,
    status,
    train_command,
    train_env,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

# Everything that is a function of the computation (not of the wall clock) must match exactly.
WALL_CLOCK_KEYS = ("tokens_per_s", "peak_mem_mb", "time")
MAX_STEPS = FAST["train.max_steps"]
BLEND = {"data.blend": {"stdlib": 0.5, "python-docs": 0.3, "debian-copyright": 0.2}, "data.eval_corpora": ["manpages"]}


def _losses(out: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in WALL_CLOCK_KEYS} for record in metrics(out)]


def _status_step(out: Path) -> int:
    try:
        return json.loads((out / "status.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpora")


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("straight")
    result = run_train(out, data_cache)
    assert result.returncode == 0, result.stderr
    return out


def test_straight_run_logs_every_step_once_and_succeeds(straight_run: Path) -> None:
    records = metrics(straight_run)
    assert [r["step"] for r in records] == list(range(1, MAX_STEPS + 1))
    assert [r["step"] for r in records if "val_loss" in r] == [4, 8, 12]
    assert status(straight_run)["status"] == "succeeded"
    assert status(straight_run)["step"] == MAX_STEPS
    assert checkpoint_steps(straight_run) == [4, 8, 12]
    config = json.loads((straight_run / "config.json").read_text())
    assert config["recipe"]["train"]["max_steps"] == MAX_STEPS and len(config["hash"]) == 64


@pytest.fixture(scope="module")
def straight_blend_run(tmp_path_factory, data_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("straight-blend")
    result = run_train(out, data_cache, BLEND)
    assert result.returncode == 0, result.stderr
    return out


def test_a_blend_run_logs_tokens_and_validation_loss_per_corpus(straight_blend_run: Path) -> None:
    records = metrics(straight_blend_run)
    names = ("debian-copyright", "python-docs", "stdlib")
    for record in records:
        assert sum(record[f"tokens/{name}"] for name in names) == record["tokens"]
        assert "tokens/manpages" not in record  # evaluated, never trained on
    assert all(records[-1][f"tokens/{name}"] > 0 for name in names)
    evaluated = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evaluated] == [4, 8, 12]
    weights = BLEND["data.blend"]
    for record in evaluated:
        assert record["val_loss"] == pytest.approx(sum(w * record[f"val_loss/{n}"] for n, w in weights.items()))
        assert record["val_loss/manpages"] > 0
    assert len({evaluated[-1][f"val_loss/{name}"] for name in (*names, "manpages")}) == 4


@pytest.mark.parametrize("overrides", [None, BLEND], ids=["one-corpus", "blend"])
def test_sigterm_then_resume_continues_bit_identically(request, overrides, data_cache: Path, tmp_path: Path) -> None:
    straight_run = request.getfixturevalue("straight_blend_run" if overrides else "straight_run")
    process = start_train(tmp_path, data_cache, overrides)
    wait_for(lambda: _status_step(tmp_path) >= 2 or process.poll() is not None, what="step 2")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    stopped = status(tmp_path)
    assert stopped["status"] == "preempted"
    assert 2 <= stopped["step"] < MAX_STEPS, "the run finished before SIGTERM arrived; nothing was tested"
    assert checkpoint_steps(tmp_path)[-1] == stopped["step"]

    result = run_train(tmp_path, data_cache, overrides, "--resume")
    assert result.returncode == 0, result.stderr
    assert status(tmp_path)["status"] == "succeeded"
    assert _losses(tmp_path) == _losses(straight_run)


def test_kill_9_mid_checkpoint_resumes_from_previous_checkpoint(straight_run: Path, data_cache: Path, tmp_path: Path) -> None:
    env = train_env(data_cache, FLIGHTDECK_TEST_CHECKPOINT_PAUSE="8")
    process = start_train(tmp_path, data_cache, env=env)
    staging = tmp_path / "checkpoints"
    wait_for(lambda: any((p / "model.pt").exists() for p in staging.glob(".tmp-step-8-*")) or process.poll() is not None,
             what="the step-8 checkpoint write to start")
    process.kill()
    process.communicate(timeout=60)

    assert process.returncode == -signal.SIGKILL
    assert checkpoint_steps(tmp_path) == [4]
    assert not (tmp_path / "checkpoints" / "step-8").exists()
    assert max(r["step"] for r in metrics(tmp_path)) == 8  # logged past the checkpoint it will resume from

    result = run_train(tmp_path, data_cache, None, "--resume")
    assert result.returncode == 0, result.stderr
    assert not list(staging.glob(".tmp-*")), "the killed writer's temporary directory was not swept"
    assert _losses(tmp_path) == _losses(straight_run)  # also: one line per step, none duplicated


def test_two_process_ddp_matches_the_single_process_first_step(straight_run: Path, data_cache: Path, tmp_path: Path) -> None:
    # Each rank takes half of the global batch; averaged over ranks, loss and gradient equal the full batch's
    # up to float summation order. Later steps differ slightly: each rank balances MoE biases on its half.
    command = train_command(tmp_path, {"train.max_steps": 2})
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *command[1:]]
    result = subprocess.run(torchrun, env=train_env(data_cache), capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert status(tmp_path)["status"] == "succeeded"
    assert checkpoint_steps(tmp_path) == [2]
    (ddp_first, _), single_first = metrics(tmp_path), metrics(straight_run)[0]
    assert ddp_first["step"] == single_first["step"] == 1
    assert ddp_first["train_loss"] == pytest.approx(single_first["train_loss"], rel=1e-5)
    assert ddp_first["grad_norm"] == pytest.approx(single_first["grad_norm"], rel=1e-4)
