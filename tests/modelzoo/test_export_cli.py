"""``python -m modelzoo.export --checkpoint DIR --to hf OUT`` on a training run directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modelzoo.checkpoint import save_checkpoint
from modelzoo.config import load_recipe
from modelzoo.export import from_hf, main
from modelzoo.model import HybridLM

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir(tmp_path) -> tuple[Path, HybridLM]:
    """A run directory as the trainer leaves it: config.json and two complete checkpoints."""
    recipe = load_recipe("tiny-ci")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"recipe": recipe.to_dict(), "hash": recipe.config_hash()}))
    torch.manual_seed(0)
    model = HybridLM(recipe.model)
    save_checkpoint(run / "checkpoints", 2, {"model": HybridLM(recipe.model).state_dict()}, {"step": 2}, keep=2)
    save_checkpoint(run / "checkpoints", 4, {"model": model.state_dict()}, {"step": 4}, keep=2)
    return run, model


def test_exports_the_newest_checkpoint_of_a_run(run_dir, tmp_path, capsys):
    run, model = run_dir
    assert main(["--checkpoint", str(run), "--to", "hf", str(tmp_path / "out")]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    exported = from_hf(tmp_path / "out").state_dict()
    assert all(torch.equal(exported[name], tensor) for name, tensor in model.state_dict().items())


def test_exports_a_given_step_directory(run_dir, tmp_path):
    run, model = run_dir
    assert main(["--checkpoint", str(run / "checkpoints" / "step-2"), "--to", "hf", str(tmp_path / "out")]) == 0
    exported = from_hf(tmp_path / "out").state_dict()
    assert not torch.equal(exported["lm_head.weight"], model.state_dict()["lm_head.weight"])


def test_bad_checkpoint_is_one_line_on_stderr_and_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "modelzoo.export", "--checkpoint", str(empty), "--to", "hf", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "complete checkpoint" in result.stderr
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused(run_dir, tmp_path, capsys):
    run, _ = run_dir
    out = tmp_path / "out"
    out.mkdir()
    (out / "other").write_text("x")
    assert main(["--checkpoint", str(run), "--to", "hf", str(out)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
