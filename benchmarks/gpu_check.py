"""`make gpu-check`: the GPU path in one short script (a few minutes on one GPU).

1. Parity of the Mamba-2 mixer, fused kernels (mamba_ssm + causal_conv1d) against the pure-PyTorch path, forward
   and backward, in float32 and under bfloat16 autocast (as in training). Both are compared with the pure path
   in float64 (the independent reference); the fused error must stay within the dtype's tolerance and within a small factor of the pure path's
   own error in that dtype.
2. One training step of a hybrid MoE config under bf16 autocast, and one with NVFP4 emulation, on CUDA.
3. `torchrun` across the visible GPUs: the tiny-ci trainer for a few steps (one rank per GPU; NCCL refuses two
   ranks on one GPU).
4. Throughput: HybridLM (fused, pure) and transformers' NemotronH on the same GPU, config and weights, bf16
   autocast: tokens/s and MFU against a bf16 GEMM measured in the same run.

Without CUDA it prints ``gpu-check: skipped, no CUDA device`` and exits 0, so CI can call it anywhere.

    .venv/bin/python benchmarks/gpu_check.py [--steps 10] [--skip-torchrun] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

SKIPPED = "gpu-check: skipped, no CUDA device"
# Relative L2 error against the float64 reference: (float32, bfloat16).
TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 5e-2}
FUSED_OVER_PURE_MAX = 4.0  # the fused error may exceed the pure path's own error in that dtype by this factor
THROUGHPUT_ARCH = {
    "pattern": "M*ME", "hidden_size": 1024, "vocab_size": 32000,
    "mamba.num_heads": 32, "mamba.head_dim": 64, "mamba.state_size": 128, "mamba.n_groups": 8,
    "mamba.chunk_size": 128, "attention.num_heads": 16, "attention.num_kv_heads": 4,
    "moe.num_experts": 16, "moe.top_k": 2, "moe.intermediate_size": 1024, "moe.shared_intermediate_size": 2048,
}
BATCH, SEQ = 8, 2048


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    value, reference = value.double(), reference.double()
    return float((value - reference).norm() / reference.norm().clamp_min(1e-30))


def mixer_outputs(mixer: torch.nn.Module, hidden: torch.Tensor,
                  autocast: torch.dtype | None = None) -> list[torch.Tensor]:
    """The forward output, then the gradients of the input and of every parameter, for a fixed upstream grad;
    under ``autocast`` the forward runs in that dtype as in training (parameters stay float32)."""
    hidden = hidden.detach().clone().requires_grad_(True)
    mixer.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=autocast is not None):
        out = mixer(hidden)
    upstream = torch.Generator(device=out.device).manual_seed(1)
    grad = torch.randn(out.shape, generator=upstream, device=out.device, dtype=torch.float32).to(out.dtype)
    out.backward(grad)
    return [out.detach(), hidden.grad.detach(), *(p.grad.detach() for p in mixer.parameters())]


def mamba_parity() -> list[dict]:
    from modelzoo.backends import Kernels, resolve_kernels
    from modelzoo.config import ModelConfig, apply_model_overrides
    from modelzoo.mamba2 import Mamba2Mixer

    cfg = apply_model_overrides(ModelConfig(), {"hidden_size": 256, "mamba.num_heads": 8, "mamba.head_dim": 64,
                                                "mamba.state_size": 64, "mamba.n_groups": 2, "mamba.chunk_size": 64})
    fused_kernels = resolve_kernels("cuda")  # raises, naming what is missing, when mamba_ssm is not installed
    torch.manual_seed(0)
    reference = Mamba2Mixer(cfg, None, Kernels("torch")).cuda().double()
    hidden = torch.randn(2, 512, cfg.hidden_size, device="cuda")
    expected = mixer_outputs(reference, hidden.double())
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        errors = {}
        for name, kernels in (("fused", fused_kernels), ("pure", Kernels("torch"))):
            mixer = Mamba2Mixer(cfg, None, kernels).cuda()
            mixer.load_state_dict(reference.state_dict())
            got = mixer_outputs(mixer, hidden, autocast=None if dtype == torch.float32 else dtype)
            errors[name] = max(relative_error(g, e) for g, e in zip(got, expected))
        ok = errors["fused"] <= TOLERANCE[dtype] and errors["fused"] <= FUSED_OVER_PURE_MAX * max(errors["pure"], 1e-7)
        rows.append({"dtype": str(dtype).removeprefix("torch."), "fused_error": errors["fused"],
                     "pure_error": errors["pure"], "tolerance": TOLERANCE[dtype], "ok": ok})
    return rows


def training_steps(backend: str) -> list[dict]:
    from modelzoo.config import ModelConfig, apply_model_overrides
    from modelzoo.model import HybridLM

    rows = []
    for label, overrides in (("bf16 autocast", {}), ("NVFP4 emulation", {"fp4.enabled": True})):
        cfg = apply_model_overrides(ModelConfig(), {"pattern": "M*MEM*E", "hidden_size": 256, "backend": backend,
                                                    "moe.latent_size": 128, "mtp.depth": 1, **overrides})
        torch.manual_seed(0)
        model = HybridLM(cfg).cuda()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ids = torch.randint(0, cfg.vocab_size, (4, 256), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(ids, labels=ids).loss
        loss.backward()
        grads_finite = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        rows.append({"step": label, "loss": float(loss), "ok": bool(torch.isfinite(loss)) and grads_finite})
    return rows


def torchrun_launch() -> dict:
    gpus = torch.cuda.device_count()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                   "-m", "modelzoo.train", "--recipe", "tiny-ci", "--set", "train.max_steps=3", "--set",
                   "train.log_every=1", "--out", out, "--wandb-mode", "disabled"]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
        status_path = Path(out) / "status.json"
        status = json.loads(status_path.read_text()) if status_path.exists() else {}
    ok = result.returncode == 0 and status.get("status") == "succeeded"
    return {"ranks": gpus, "seconds": round(time.perf_counter() - started, 1), "ok": ok,
            **({} if ok else {"output_tail": (result.stdout + result.stderr)[-1500:]})}


def gemm_ceiling(size: int = 8192, repeats: int = 20) -> float:
    """Best bf16 GEMM rate on this GPU, FLOP/s."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    return 2 * size**3 / min(cuda_seconds(lambda: a @ b) for _ in range(repeats))


def cuda_seconds(call: Callable[[], object]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    call()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3


def throughput(steps: int, fused_available: bool) -> list[dict]:
    import model_throughput as cpu_benchmark  # benchmarks/model_throughput.py: the same FLOP count as on CPU
    from modelzoo.config import ModelConfig, apply_model_overrides
    from modelzoo.export import to_hf
    from modelzoo.model import HybridLM

    model_flops_per_step = cpu_benchmark.model_flops_per_step
    cpu_benchmark.BATCH, cpu_benchmark.SEQ = BATCH, SEQ  # its FLOP count reads these
    ceiling = gemm_ceiling()
    torch.manual_seed(0)
    base = apply_model_overrides(ModelConfig(), {**THROUGHPUT_ARCH, "backend": "torch"})
    flops = model_flops_per_step(base)
    ids = torch.randint(0, base.vocab_size, (BATCH, SEQ), device="cuda")
    candidates: dict[str, Callable[[], torch.nn.Module]] = {"HybridLM pure": lambda: HybridLM(base)}
    if fused_available:
        candidates["HybridLM fused"] = lambda: HybridLM(apply_model_overrides(base, {"backend": "cuda"}))

    def nemotron_h() -> torch.nn.Module:
        from transformers import NemotronHForCausalLM

        with tempfile.TemporaryDirectory() as tmp:
            return NemotronHForCausalLM.from_pretrained(to_hf(HybridLM(base), Path(tmp) / "hf"))

    candidates["transformers NemotronH"] = nemotron_h
    rows = [{"model": "bf16 GEMM 8192³", "tokens_per_s": None, "tflops": ceiling / 1e12, "mfu": 1.0}]
    for name, build in candidates.items():
        model = build().cuda().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(ids, labels=ids).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up (kernel compilation, autotuning)
        seconds = sorted(cuda_seconds(step) for _ in range(steps))[steps // 2]
        rows.append({"model": name, "tokens_per_s": BATCH * SEQ / seconds, "tflops": flops / seconds / 1e12,
                     "mfu": flops / seconds / ceiling, "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30})
        del model, optimizer
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}")
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{row.get(c):.4g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    parser.add_argument("--skip-torchrun", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(SKIPPED)
        return 0
    from modelzoo.backends import BackendError, resolve_kernels

    started = time.perf_counter()
    try:
        resolve_kernels("cuda")
        fused = True
    except BackendError as error:
        print(f"fused kernels unavailable ({error}); parity skipped, throughput without the fused row")
        fused = False
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda}
    results["mamba_parity"] = mamba_parity() if fused else []
    results["training_steps"] = training_steps("cuda" if fused else "torch")
    results["torchrun"] = [] if args.skip_torchrun else [torchrun_launch()]
    results["throughput"] = throughput(args.steps, fused)
    results["seconds"] = round(time.perf_counter() - started, 1)

    print(f"# gpu-check on {results['device']} (torch {results['torch']}, CUDA {results['cuda']}), "
          f"{results['seconds']} s")
    for key in ("mamba_parity", "training_steps", "torchrun", "throughput"):
        print_table(key.replace("_", " "), results[key])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = [key for key in ("mamba_parity", "training_steps", "torchrun") for row in results[key] if not row["ok"]]
    if failed:
        print(f"\ngpu-check: FAILED ({', '.join(sorted(set(failed)))})")
        return 1
    print("\ngpu-check: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
