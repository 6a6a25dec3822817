"""``python -m modelzoo.train`` as the platform runs it: bad input ends with one clear stderr line and the
contract's exit code without touching existing checkpoints; wandb logs offline into the run directory."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.modelzoo.train_runner import checkpoint_steps, metrics, run_train, status, train_env

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpora")


def _error_line(result: subprocess.CompletedProcess, returncode: int) -> str:
    """The single stderr line of a failed run (no traceback), after checking the exit code."""
    assert result.returncode == returncode, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _tree_digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_it_refuses_an_unknown_recipe(tmp_path: Path, data_cache: Path) -> None:
    line = _error_line(run_train(tmp_path, data_cache, recipe="tiny-cj"), 2)
    assert "unknown recipe 'tiny-cj'" in line and "tiny-ci" in line


def test_it_refuses_an_unknown_override_key_naming_it(tmp_path: Path, data_cache: Path) -> None:
    line = _error_line(run_train(tmp_path, data_cache, {"moe.latnt_size": 32}), 2)
    assert "moe.latnt_size" in line and "moe.latent_size" in line


def test_it_refuses_an_override_without_a_value(tmp_path: Path, data_cache: Path) -> None:
    result = run_train(tmp_path, data_cache, None, "--set", "fp4.enabled")
    assert "expected KEY=VALUE" in _error_line(result, 2)


def test_it_refuses_a_corpus_path_whether_or_not_it_exists(tmp_path: Path, data_cache: Path) -> None:
    existing = tmp_path / "secret"
    existing.mkdir()
    (existing / "key.txt").write_text("do not train on me\n" * 100)
    lines = {}
    for path in (existing, tmp_path / "missing"):
        out = tmp_path / f"run-{path.name}"
        lines[path.name] = _error_line(run_train(out, data_cache, {"data.corpus": str(path)}), 2).replace(str(path), "PATH")
    assert lines["secret"] == lines["missing"]
    assert "data.corpus: 'PATH' is not a registered corpus" in lines["secret"] and "registered: " in lines["secret"]
    assert not any("secret" in p.name or "do not train" in p.read_text(errors="ignore")
                   for p in data_cache.rglob("*") if p.is_file())


def test_it_refuses_an_unwritable_output_directory(tmp_path: Path, data_cache: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _error_line(run_train(blocker / "run", data_cache), 2)
    assert "--out" in line and str(blocker / "run") in line


def test_non_finite_loss_fails_keeping_checkpoints_and_bad_resumes_leave_them_alone(tmp_path: Path, data_cache: Path) -> None:
    # An absurd constant learning rate blows the weights up after the first update.
    diverging = {"optim.lr": 1e30, "optim.min_lr": 1e30, "optim.warmup_steps": 0, "train.checkpoint_every": 1}
    line = _error_line(run_train(tmp_path, data_cache, diverging), 1)
    assert "non-finite loss" in line and "step 2" in line
    assert status(tmp_path) | {"updated": 0, "pid": 0} == {
        "status": "failed", "step": 1, "max_steps": 12, "reason": line.removeprefix("error: "), "updated": 0, "pid": 0,
    }
    assert checkpoint_steps(tmp_path) == [1]
    assert [r["step"] for r in metrics(tmp_path)] == [1]
    before = _tree_digest(tmp_path / "checkpoints")

    other_config = run_train(tmp_path, data_cache, {**diverging, "optim.lr": 1e-3, "optim.min_lr": 1e-4}, "--resume")
    line = _error_line(other_config, 2)
    assert "config hash" in line and "step-1" in line

    line = _error_line(run_train(tmp_path, data_cache, diverging), 2)
    assert "--resume" in line and "step-1" in line
    assert _tree_digest(tmp_path / "checkpoints") == before


def test_wandb_logs_offline_into_the_run_directory_by_default(tmp_path: Path, data_cache: Path) -> None:
    wandb_home = tmp_path / "wandb-home"
    env = train_env(data_cache, WANDB_CONFIG_DIR=str(wandb_home), WANDB_CACHE_DIR=str(wandb_home),
                    WANDB_DATA_DIR=str(wandb_home))
    out = tmp_path / "run"
    # No --wandb-mode and no WANDB_API_KEY: offline. --resume on an empty directory starts from step 0.
    flags = ["--wandb-id", "flightdeck-test-7", "--wandb-project", "p", "--wandb-group", "g", "--wandb-tags", "a,b",
             "--resume"]
    result = run_train(out, data_cache, {"train.max_steps": 2, "train.eval_every": 2}, *flags, env=env, wandb_mode=None)
    assert result.returncode == 0, result.stderr
    assert status(out)["status"] == "succeeded"
    (history,) = (out / "wandb").glob("offline-run-*-flightdeck-test-7/run-flightdeck-test-7.wandb")
    logged = history.read_bytes()
    for key in (b"train_loss", b"val_loss", b"grad_norm", b"tokens_per_s", b"moe_imbalance"):
        assert key in logged, key


def test_a_new_wandb_run_id_is_eight_lowercase_letters_or_digits_and_fresh_each_time():
    from modelzoo.tracking import new_run_id

    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(run_id) == 8 and run_id.isalnum() and run_id == run_id.lower() for run_id in ids)
