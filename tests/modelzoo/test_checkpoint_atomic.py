"""Checkpoint directories: only complete ones count, the newest k are kept, leftovers of killed writers are swept."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from modelzoo.checkpoint import MARKER, complete_checkpoints, latest_checkpoint, load_checkpoint, save_checkpoint
from modelzoo.rng_state import capture_rng, restore_rng


def _save(root: Path, step: int, keep: int = 2) -> Path:
    return save_checkpoint(root, step, {"model": {"w": torch.full((2, 2), float(step))}}, {"step": step}, keep=keep)


def test_a_saved_checkpoint_loads_back(tmp_path: Path) -> None:
    path = _save(tmp_path, 3)
    tensors, state = load_checkpoint(path, ["model"])
    assert path.name == "step-3" and (path / MARKER).is_file()
    assert torch.equal(tensors["model"]["w"], torch.full((2, 2), 3.0)) and state == {"step": 3}


def test_only_the_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, keep=2)
    assert [step for step, _ in complete_checkpoints(tmp_path)] == [30, 40]
    assert latest_checkpoint(tmp_path)[0] == 40


def test_directories_without_the_marker_do_not_count(tmp_path: Path) -> None:
    _save(tmp_path, 5)
    torn = tmp_path / "step-9"
    torn.mkdir()
    (torn / "model.pt").write_bytes(b"half a file")
    leftover = tmp_path / ".tmp-step-12-4242"
    leftover.mkdir()
    assert latest_checkpoint(tmp_path)[0] == 5

    _save(tmp_path, 9)  # a later save of that step replaces the torn directory and sweeps the leftover
    assert latest_checkpoint(tmp_path)[0] == 9
    assert not leftover.exists()
    tensors, _ = load_checkpoint(tmp_path / "step-9", ["model"])
    assert tensors["model"]["w"][0, 0] == 9.0


def test_saving_an_existing_complete_step_keeps_it(tmp_path: Path) -> None:
    first = _save(tmp_path, 7)
    marker_time = (first / MARKER).stat().st_mtime_ns
    save_checkpoint(tmp_path, 7, {"model": {"w": torch.zeros(1)}}, {"step": -1}, keep=2)
    assert (first / MARKER).stat().st_mtime_ns == marker_time
    assert load_checkpoint(first, [])[1] == {"step": 7}


def test_rng_states_survive_a_checkpoint_round_trip(tmp_path: Path) -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    cpu = torch.device("cpu")
    path = save_checkpoint(tmp_path, 1, {"rng": [capture_rng(cpu)]}, {}, keep=1)
    expected = [draw() for _ in range(3)]
    (state,) = load_checkpoint(path, ["rng"])[0]["rng"]
    restore_rng(state, cpu)
    assert [draw() for _ in range(3)] == expected
