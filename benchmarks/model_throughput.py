"""Training throughput of HybridLM against transformers' NemotronHForCausalLM (pure-PyTorch path), side by side.

Same architecture for both (width 256, pattern M*ME, 16 experts top-2, sequence 256, batch 8), same weights,
a full training step each (forward, backward, fused AdamW for every candidate). HybridLM runs eager and with
``compile_regions()``, plain and NVFP4-emulated; all candidates' steps are interleaved in one process. Also:
model FLOP utilisation against this machine's fp32 matmul rate measured in the same run, the first (compiling)
step of each compiled model, chunked SSD against the naive scan, and peak memory (max RSS of this process).

    .venv/bin/python benchmarks/model_throughput.py [--steps 5] [--threads N] [--skip-compile] [--blocks]

The inductor cache goes to ``var/inductor-cache`` (as in training) unless TORCHINDUCTOR_CACHE_DIR is set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelzoo.config import ModelConfig, apply_model_overrides  # noqa: E402
from modelzoo.export import to_hf  # noqa: E402
from modelzoo.model import HybridLM  # noqa: E402
from modelzoo.ssd import ssd_chunked, ssd_ref  # noqa: E402
from modelzoo.trainer import use_inductor_cache  # noqa: E402

BATCH, SEQ = 8, 256
ARCH = {
    "pattern": "M*ME", "hidden_size": 256, "vocab_size": 256, "backend": "torch",
    "mamba.num_heads": 8, "mamba.head_dim": 64, "mamba.state_size": 64, "mamba.n_groups": 1, "mamba.chunk_size": 64,
    "attention.num_heads": 8, "attention.num_kv_heads": 2,
    "moe.num_experts": 16, "moe.top_k": 2, "moe.intermediate_size": 256, "moe.shared_intermediate_size": 512,
}


def time_side_by_side(
    steps: dict[str, Callable[[], None]], repeats: int, statistic: Callable = statistics.median
) -> dict[str, dict[str, float]]:
    """Wall and process-CPU seconds per call (median unless ``statistic`` says otherwise), the candidates
    interleaved call by call so that load from other processes on a shared machine hits all of them alike."""
    for step in steps.values():
        step()  # warm-up (and compilation, for compiled candidates: timed by ``first_steps`` before this)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: {"wall_s": statistic([w for w, _ in runs]), "cpu_s": statistic([c for _, c in runs])}
        for name, runs in samples.items()
    }


def train_step(model: torch.nn.Module, ids: torch.Tensor, loss_of: Callable) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        loss = loss_of(model, ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def matmul_ceiling(size: int = 1024, repeats: int = 10) -> tuple[float, float]:
    """Best fp32 GEMM rate with the current threads (square ``size`` matrices): (FLOP per wall second,
    FLOP per CPU second summed over threads)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    timings = time_side_by_side({"mm": lambda: torch.mm(a, b)}, repeats, statistic=min)["mm"]
    return 2 * size**3 / timings["wall_s"], 2 * size**3 / timings["cpu_s"]


def model_flops_per_step(cfg: ModelConfig) -> float:
    """Useful FLOPs of one training step (3x forward): matmuls with active weights, attention scores, SSD."""
    tokens = BATCH * SEQ
    h, m, a, moe = cfg.hidden_size, cfg.mamba, cfg.attention, cfg.moe
    inner = m.num_heads * m.head_dim
    per_token = {
        "mamba": 2 * h * (2 * inner + 2 * m.n_groups * m.state_size + m.num_heads) + 2 * inner * h
        + 4 * inner * m.state_size,  # state update and read-out
        "attention": 2 * h * (a.num_heads + 2 * a.num_kv_heads) * cfg.attention_head_dim
        + 2 * a.num_heads * cfg.attention_head_dim * h + 2 * 2 * SEQ * a.num_heads * cfg.attention_head_dim / 2,
        "moe": 2 * h * moe.num_experts + 2 * 2 * h * moe.intermediate_size * moe.top_k
        + 2 * 2 * h * moe.shared_intermediate_size,
        "mlp": 2 * 2 * h * cfg.mlp.intermediate_size,
    }
    forward = tokens * (sum(per_token[kind] for kind in cfg.layer_kinds) + 2 * h * cfg.vocab_size)
    return 3 * forward


def ours_loss(model: HybridLM, ids: torch.Tensor) -> torch.Tensor:
    return model(ids, labels=ids).loss


def hf_loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(ids, labels=ids).loss


def ssd_timings(cfg: ModelConfig) -> dict[str, float]:
    m = cfg.mamba
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, SEQ, m.num_heads, m.head_dim, generator=g)
    dt = torch.rand(BATCH, SEQ, m.num_heads, generator=g) * 0.1
    A = -torch.rand(m.num_heads, generator=g)
    B = torch.randn(BATCH, SEQ, m.n_groups, m.state_size, generator=g)
    C = torch.randn(BATCH, SEQ, m.n_groups, m.state_size, generator=g)
    timings = time_side_by_side(
        {"chunked": lambda: ssd_chunked(x, dt, A, B, C, m.chunk_size), "naive": lambda: ssd_ref(x, dt, A, B, C)}, 3
    )
    return {"ssd_chunked_ms": 1e3 * timings["chunked"]["wall_s"], "ssd_naive_scan_ms": 1e3 * timings["naive"]["wall_s"]}


def block_timings(cfg: ModelConfig, compiled: bool) -> dict[str, float]:
    """Milliseconds of forward plus backward of each block of HybridLM on its own (a random hidden state of the
    benchmark's shape, the blocks interleaved as the models are): where the step's time goes, block by block."""
    model = HybridLM(cfg)
    if compiled:
        model.compile_regions()
    hidden = torch.randn(BATCH, SEQ, cfg.hidden_size, requires_grad=True)

    def forward_backward(block: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            out = block(hidden)
            (out[0] if isinstance(out, tuple) else out).sum().backward()
        return run

    steps = {f"{index}_{block.kind}": forward_backward(block) for index, block in enumerate(model.layers)}
    first_steps(steps)  # compiles, for the compiled model
    suffix = "_compiled" if compiled else ""
    return {f"block_{name}{suffix}_ms": 1e3 * timing["wall_s"] for name, timing in time_side_by_side(steps, 5).items()}


def first_steps(steps: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Wall seconds of each candidate's first step: compilation included for compiled ones."""
    seconds = {}
    for name, step in steps.items():
        started = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - started
    return seconds


def build_candidates(cfg: ModelConfig, ids: torch.Tensor, args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """Training steps of HybridLM (eager and compiled, plain and NVFP4) and transformers' model, same weights."""
    ours = HybridLM(cfg)
    fp4_cfg = apply_model_overrides(cfg, {"fp4.enabled": True})
    models = {"ours": ours}
    if not args.skip_fp4:
        models["fp4"] = HybridLM(fp4_cfg)
    if not args.skip_compile:
        for name, model in list(models.items()):
            compiled = HybridLM(model.cfg)
            compiled.load_state_dict(model.state_dict())
            compiled.compile_regions()
            models[f"{name}_compiled"] = compiled
    steps = {name: train_step(model, ids, ours_loss) for name, model in models.items()}
    if not args.skip_hf:
        from transformers import NemotronHForCausalLM

        with tempfile.TemporaryDirectory() as tmp:
            theirs = NemotronHForCausalLM.from_pretrained(to_hf(ours, Path(tmp) / "hf"))
        steps["hf"] = train_step(theirs.train(), ids, hf_loss)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-hf", action="store_true", help="do not time transformers' model")
    parser.add_argument("--skip-fp4", action="store_true", help="do not time the NVFP4-emulated model")
    parser.add_argument("--skip-compile", action="store_true", help="do not time compile_regions() models")
    parser.add_argument("--blocks", action="store_true",
                        help="also time each block's forward and backward on its own (eager and compiled)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    use_inductor_cache()

    cfg = apply_model_overrides(ModelConfig(), ARCH)
    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ))
    steps = build_candidates(cfg, ids, args)

    results: dict[str, float | int | str] = {"threads": args.threads, "torch": torch.__version__}
    results["load_average_before"] = os.getloadavg()[0]
    for name, seconds in first_steps(steps).items():
        if name.endswith("_compiled"):
            results[f"{name}_first_step_s"] = seconds
    timings = time_side_by_side(steps, args.steps)
    results["load_average_after"] = os.getloadavg()[0]
    for name, timing in timings.items():
        results[f"{name}_step_wall_s"] = timing["wall_s"]
        results[f"{name}_step_cpu_s"] = timing["cpu_s"]
        results[f"{name}_tokens_per_s"] = BATCH * SEQ / timing["wall_s"]

    def ratio(key: str, slow: str, fast: str) -> None:
        if slow in timings and fast in timings:
            results[f"{key}_wall"] = timings[slow]["wall_s"] / timings[fast]["wall_s"]
            results[f"{key}_cpu"] = timings[slow]["cpu_s"] / timings[fast]["cpu_s"]

    ratio("speedup_vs_hf", "hf", "ours")
    ratio("speedup_vs_hf_compiled", "hf", "ours_compiled")
    ratio("fp4_over_plain", "fp4", "ours")
    ratio("fp4_over_plain_compiled", "fp4_compiled", "ours_compiled")
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ceiling_wall, ceiling_cpu = matmul_ceiling()
    flops = model_flops_per_step(cfg)
    results["matmul_ceiling_gflops_wall"] = ceiling_wall / 1e9
    results["matmul_ceiling_gflops_per_cpu_s"] = ceiling_cpu / 1e9
    results["model_gflop_per_step"] = flops / 1e9
    for name in ("ours", "ours_compiled"):
        if name in timings:
            suffix = name.removeprefix("ours")
            results[f"mfu{suffix}_wall"] = flops / timings[name]["wall_s"] / ceiling_wall
            # FLOPs per CPU-second against the GEMM's FLOPs per CPU-second: less sensitive to other load.
            results[f"mfu{suffix}_cpu"] = flops / timings[name]["cpu_s"] / ceiling_cpu
    if "hf" in timings:
        results["mfu_hf_wall"] = flops / timings["hf"]["wall_s"] / ceiling_wall
        # The most any implementation of these FLOPs could gain on transformers' step at this GEMM rate: a step
        # that did nothing but its GEMMs, at the rate of a large square one.
        results["speedup_vs_hf_bound_wall"] = timings["hf"]["wall_s"] / (flops / ceiling_wall)

    if args.blocks:
        for compiled in (False, True) if not args.skip_compile else (False,):
            results.update(block_timings(cfg, compiled))
    results.update(ssd_timings(cfg))
    results["ssd_speedup"] = results["ssd_naive_scan_ms"] / results["ssd_chunked_ms"]
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
