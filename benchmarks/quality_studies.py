"""Quality studies run through the real trainer CLI on the default corpus (stdlib, byte tokenizer):

1. NVFP4 with the recipe's defaults (RHT, stochastic rounding, 2-D weight blocks, first and last layer in
   high precision) against high precision, and each of those four knobs switched off on its own;
2. the hybrid pattern against an attention-only pattern of (almost exactly) the same parameter count;
3. multi-token prediction on and off: validation loss, and the self-speculative acceptance rate of the
   MTP run's draft head.

Every arm is tiny-ci's model with the same seed, data order and token budget (``SCALE``). The two main arms
of study 1 also run a second seed so the gap can be read against seed noise. Runs go to ``--out`` (default
``var/benchmarks/quality``) and are started with ``--resume``, so an interrupted study continues where it
stopped and a finished one is only re-read.

    .venv/bin/python benchmarks/quality_studies.py [--workers 2] [--steps 300] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelzoo.config import Recipe, apply_overrides, load_recipe  # noqa: E402
from modelzoo.data import build_blend, validation_batches  # noqa: E402
from modelzoo.model import HybridLM  # noqa: E402

RECIPE = "tiny-ci"
SCALE = {
    "train.batch_size": 8,
    "train.seq_len": 128,
    "train.log_every": 25,
    "train.eval_every": 100,
    "train.eval_batches": 8,
    "optim.warmup_steps": 30,
}
# The NVFP4 recipe's defaults: every knob on, first and last layer kept in high precision ("BF16 islands").
NVFP4 = {"fp4.enabled": True, "fp4.rht": True, "fp4.stochastic_rounding": True, "fp4.weight_2d_blocks": True,
         "fp4.bf16_first_layers": 1, "fp4.bf16_last_layers": 1}
# Attention-only twin of M*ME: each Mamba layer becomes attention + MLP, the MLP width chosen to match parameters.
ATTENTION_ONLY = {"pattern": "*-*-*E", "mlp.intermediate_size": 140}

ARMS: dict[str, dict[str, Any]] = {
    "high-precision": {},
    "high-precision-seed1": {"train.seed": 1},
    "nvfp4": NVFP4,
    "nvfp4-seed1": {**NVFP4, "train.seed": 1},
    "nvfp4-no-rht": {**NVFP4, "fp4.rht": False},
    "nvfp4-no-sr": {**NVFP4, "fp4.stochastic_rounding": False},
    "nvfp4-1d-weight-blocks": {**NVFP4, "fp4.weight_2d_blocks": False},
    "nvfp4-no-bf16-islands": {**NVFP4, "fp4.bf16_first_layers": 0, "fp4.bf16_last_layers": 0},
    "attention-only": ATTENTION_ONLY,
    "mtp": {"mtp.depth": 1},
}


def run_arm(name: str, overrides: dict[str, Any], root: Path) -> float:
    """Train one arm through the CLI (resuming if it ran before); returns wall seconds."""
    out = root / name
    command = [sys.executable, "-m", "modelzoo.train", "--recipe", RECIPE, "--out", str(out), "--resume",
               "--wandb-mode", "disabled"]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    # One thread per run: two single-threaded runs use two cores far better than one two-threaded run.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"arm {name} failed ({result.returncode}): {result.stderr.strip()}")
    seconds = time.perf_counter() - started
    print(f"  {name}: done in {seconds:.0f}s", flush=True)
    return seconds


def summarize(out: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = records[-1]
    config = json.loads((out / "config.json").read_text())
    recipe = Recipe.from_dict(config["recipe"])
    fp4_errors = [r["fp4_error"] for r in records if r.get("fp4_error") is not None]
    return {
        "val_loss": final["val_loss"],
        "val_curve": {r["step"]: round(r["val_loss"], 4) for r in records if "val_loss" in r},
        "train_loss_last_interval": final["train_loss"],
        "tokens": final["tokens"],
        "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in records),
        "fp4_error_mean": statistics.fmean(fp4_errors) if fp4_errors else None,
        "moe_imbalance_last": final["moe_imbalance"],
        "parameters": sum(p.numel() for p in HybridLM(recipe.model).parameters()),
        "config_hash": config["hash"],
    }


def speculative_acceptance(out: Path, prompts: int = 4, prompt_len: int = 64, new_tokens: int = 48) -> dict[str, Any]:
    """Greedy self-speculative decoding with the trained MTP head on validation prompts."""
    recipe = Recipe.from_dict(json.loads((out / "config.json").read_text())["recipe"])
    step = recipe.train.max_steps
    model = HybridLM(recipe.model)
    model.load_state_dict(torch.load(out / "checkpoints" / f"step-{step}" / "model.pt", weights_only=True))
    corpus = next(iter(build_blend(recipe.data).corpora.values()))  # these studies train on one corpus
    (batch,) = validation_batches(corpus.val, prompt_len, prompts, 1)
    rates, passes_plain, passes_drafted, same = [], 0, 0, True
    for prompt in batch.split(1):  # speculative decoding runs one sequence at a time
        plain = model.generate(prompt, new_tokens)
        drafted = model.generate(prompt, new_tokens, speculative=True)
        rates.append(drafted.acceptance_rate)
        passes_plain += plain.main_model_passes
        passes_drafted += drafted.main_model_passes
        same = same and torch.equal(plain.tokens, drafted.tokens)
    return {
        "acceptance_rate": statistics.fmean(rates),
        "main_model_passes_plain": passes_plain,
        "main_model_passes_speculative": passes_drafted,
        "same_tokens_as_greedy": same,
        "prompts": prompts,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
    }


def relative_gap(loss: float, reference: float) -> float:
    return 100.0 * (loss - reference) / reference


def report(results: dict[str, dict[str, Any]], acceptance: dict[str, Any]) -> str:
    hp = statistics.fmean(results[n]["val_loss"] for n in ("high-precision", "high-precision-seed1"))
    seed_spread = abs(relative_gap(results["high-precision-seed1"]["val_loss"], results["high-precision"]["val_loss"]))
    lines = [
        "| arm | val loss | gap to high precision (seed 0) | mean fp4_error | tokens/s (median) |",
        "|---|---|---|---|---|",
    ]
    for name in ARMS:
        if name in ("attention-only", "mtp"):
            continue
        r = results[name]
        reference = results["high-precision-seed1" if name.endswith("seed1") else "high-precision"]["val_loss"]
        fp4_error = f"{r['fp4_error_mean']:.4f}" if r["fp4_error_mean"] is not None else "-"
        lines.append(f"| {name} | {r['val_loss']:.4f} | {relative_gap(r['val_loss'], reference):+.2f}% | "
                     f"{fp4_error} | {r['tokens_per_s_median']:.0f} |")
    lines.append(f"\nHigh precision across seeds 0/1: mean {hp:.4f}, seed-to-seed difference {seed_spread:.2f}%.\n")
    lines += [
        "| pattern | parameters | val loss | tokens/s (median) |",
        "|---|---|---|---|",
    ]
    for label, name in (("hybrid M*ME", "high-precision"), ("attention-only *-*-*E", "attention-only")):
        r = results[name]
        lines.append(f"| {label} | {r['parameters']:,} | {r['val_loss']:.4f} | {r['tokens_per_s_median']:.0f} |")
    off, on = results["high-precision"], results["mtp"]
    lines += [
        "",
        "| MTP | val loss (next token) | tokens/s (median) |",
        "|---|---|---|",
        f"| off | {off['val_loss']:.4f} | {off['tokens_per_s_median']:.0f} |",
        f"| depth 1 | {on['val_loss']:.4f} | {on['tokens_per_s_median']:.0f} |",
        "",
        f"Self-speculative decoding with the depth-1 head ({acceptance['prompts']} validation prompts of "
        f"{acceptance['prompt_len']} tokens, {acceptance['new_tokens']} new tokens each): acceptance rate "
        f"{acceptance['acceptance_rate']:.3f}, main-model passes {acceptance['main_model_passes_speculative']} vs "
        f"{acceptance['main_model_passes_plain']} for plain greedy, identical output: {acceptance['same_tokens_as_greedy']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per arm (same for all)")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "benchmarks" / "quality")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the decoding check below is latency-bound; extra threads only contend
    arms = {name: {**SCALE, "train.max_steps": args.steps, **overrides} for name, overrides in ARMS.items()}
    for overrides in arms.values():  # fail fast on a bad arm before hours of training
        apply_overrides(load_recipe(RECIPE), overrides)

    started = time.perf_counter()
    print(f"training {len(arms)} arms, {args.workers} at a time, into {args.out}", flush=True)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        seconds = dict(zip(arms, pool.map(lambda item: run_arm(*item, args.out), arms.items())))
    results = {name: {**summarize(args.out / name), "wall_seconds": round(seconds[name], 1)} for name in arms}
    acceptance = speculative_acceptance(args.out / "mtp")
    total = time.perf_counter() - started

    (args.out / "results.json").write_text(json.dumps({"arms": results, "mtp_acceptance": acceptance,
                                                       "total_seconds": total}, indent=1))
    print(report(results, acceptance))
    print(f"\ntotal {total:.0f}s; per-arm results in {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
