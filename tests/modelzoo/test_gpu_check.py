"""`make gpu-check` (benchmarks/gpu_check.py) on a machine without CUDA: one line, success, so CI can call it."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_without_a_cuda_device_it_prints_one_skip_line_and_succeeds():
    # An empty CUDA_VISIBLE_DEVICES hides any GPU, so the check skips on GPU hosts as well.
    result = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "gpu-check: skipped, no CUDA device\n"
