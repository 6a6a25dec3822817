"""Training throughput of HybridLM against transformers' NemotronHForCausalLM (pure-PyTorch path), side by side.

Same architecture for both (width 256, pattern M*ME, 16 experts top-2, sequence 256, batch 8), same weights,
a full training step each (forward, backward, AdamW). Also: model FLOP utilisation against this machine's
measured fp32 matmul ceiling, chunked SSD against the naive scan, an NVFP4-emulated step against a plain
step, and peak memory (max RSS of this process).

    .venv/bin/python benchmarks/model_throughput.py [--steps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
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

BATCH, SEQ = 8, 256
ARCH = {
    "pattern": "M*ME", "hidden_size": 256, "vocab_size": 256, "backend": "torch",
    "mamba.num_heads": 8, "mamba.head_dim": 64, "mamba.state_size": 64, "mamba.n_groups": 1, "mamba.chunk_size": 64,
    "attention.num_heads": 8, "attention.num_kv_heads": 2,
    "moe.num_experts": 16, "moe.top_k": 2, "moe.intermediate_size": 256, "moe.shared_intermediate_size": 512,
}


def time_steps(step: Callable[[], None], steps: int, warmup: int = 2) -> float:
    """Median seconds of one call after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step(model: torch.nn.Module, ids: torch.Tensor, loss_of: Callable) -> Callable[[], None]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = loss_of(model, ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def matmul_ceiling(size: int = 1024, repeats: int = 10) -> float:
    """Best fp32 GEMM rate of this machine in FLOP/s (square ``size`` matrices)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = min(time_steps(lambda: torch.mm(a, b), 1, warmup=1) for _ in range(repeats))
    return 2 * size**3 / seconds


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
    return {
        "ssd_chunked_ms": 1e3 * time_steps(lambda: ssd_chunked(x, dt, A, B, C, m.chunk_size), 5),
        "ssd_naive_scan_ms": 1e3 * time_steps(lambda: ssd_ref(x, dt, A, B, C), 3, warmup=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-hf", action="store_true", help="do not time transformers' model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = apply_model_overrides(ModelConfig(), ARCH)
    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ))
    ours = HybridLM(cfg)
    results: dict[str, float | int | str] = {"threads": args.threads, "torch": torch.__version__}
    results["ours_step_s"] = time_steps(train_step(ours, ids, ours_loss), args.steps)
    results["ours_tokens_per_s"] = BATCH * SEQ / results["ours_step_s"]
    results["peak_rss_after_ours_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if not args.skip_hf:
        from transformers import NemotronHForCausalLM

        with tempfile.TemporaryDirectory() as tmp:
            theirs = NemotronHForCausalLM.from_pretrained(to_hf(ours, Path(tmp) / "hf"))
        theirs.train()
        results["hf_step_s"] = time_steps(train_step(theirs, ids, hf_loss), args.steps)
        results["hf_tokens_per_s"] = BATCH * SEQ / results["hf_step_s"]
        results["speedup_vs_hf"] = results["hf_step_s"] / results["ours_step_s"]
        del theirs

    ceiling = matmul_ceiling()
    flops = model_flops_per_step(cfg)
    results["matmul_ceiling_gflops"] = ceiling / 1e9
    results["model_gflop_per_step"] = flops / 1e9
    results["mfu"] = flops / results["ours_step_s"] / ceiling

    fp4_model = HybridLM(apply_model_overrides(cfg, {"fp4.enabled": True}))
    results["fp4_step_s"] = time_steps(train_step(fp4_model, ids, ours_loss), args.steps)
    results["fp4_over_plain"] = results["fp4_step_s"] / results["ours_step_s"]
    del fp4_model

    results.update(ssd_timings(cfg))
    results["ssd_speedup"] = results["ssd_naive_scan_ms"] / results["ssd_chunked_ms"]
    results["peak_rss_end_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
