"""Demo data: the tiny-ci, nano-baseline and nvfp4-production baselines, finished ablation and integration
studies whose metrics come from really training them (tiny-ci for the router and LR ideas; the NVFP4 production
recipe for the FP4 area's ideas, so their patches change real FP4 knobs), and a small live study for ``make run``.

Training results are cached under ``var/demo-cache/<config hash>.jsonl``, so seeding again (or in another
checkout with the same recipes) replays them instead of training. The finished studies go through the real
services and attempt state machine; only the trainer's output is replayed from the cache.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from experiments import services
from experiments.execution import attempts, launcher, monitor
from experiments.models import LIVE_STATES, Attempt, Run, RunStatus, Study
from experiments.planning import plan_study
from ideas.models import Idea
from modelzoo.run_files import METRICS_FILE

DEMO_HOST = "demo-seed"
DEMO_SEEDS = [0, 1]
DEMO_STEPS = 20  # ~20 s of CPU per run on tiny-ci; 12 distinct runs are trained once, then cached
FP4_DEMO_STEPS = 10  # NVFP4 emulation costs ~3 s of CPU per step of nvfp4-production: 8 runs, ~4 CPU-minutes once
LIVE_STEPS = 400
LIVE_TITLE = "Live demo: router bias rate + lower LR"
PARALLEL_TRAINERS = 2

# Demo ideas (from ideas/demo_data.py) recognised by their recipe patches, which tiny-ci accepts.
ROUTER_BIAS = {"moe.bias_update_rate": 0.005}
LOWER_LR = {"optim.lr": 0.002}
PROSE_MIX = {"data.blend": {"stdlib": 0.6, "python-docs": 0.25, "debian-copyright": 0.15}}
# Data-mix studies need every arm evaluated on every corpus, so this baseline also reports the prose losses.
CORPORA_BASELINE = "tiny-ci-corpora"
EVAL_CORPORA = {"data.eval_corpora": ["debian-copyright", "python-docs"]}
# The FP4 area's ideas: each moves one knob of the NVFP4 production baseline.
FP4_BASELINE = "nvfp4-production"
FP4_PATCHES = ({"fp4.stochastic_rounding": False}, {"fp4.rht": False}, {"fp4.bf16_last_layers": 2})


def cache_dir() -> Path:
    return settings.VAR_DIR / "demo-cache"


def _idea(patch: dict) -> Idea | None:
    return next((idea for idea in Idea.objects.order_by("number") if idea.recipe_patch == patch), None)


def _baselines() -> None:
    services.baseline_save(name="tiny-ci", recipe="tiny-ci", description="CI-sized hybrid; trains in seconds on CPU.")
    services.baseline_save(name="nano-baseline", recipe="nano-baseline",
                           description="Nemotron-3-style hybrid Mamba-2/attention MoE, CPU-trainable in minutes.")
    services.baseline_save(name=CORPORA_BASELINE, recipe="tiny-ci", overrides=EVAL_CORPORA,
                           description="tiny-ci trained on stdlib and also evaluated on the prose corpora, for "
                                       "data-mix studies.")
    # Every step logged, so the demo's short FP4 runs draw full curves (the recipe itself logs every 5th).
    services.baseline_save(name=FP4_BASELINE, recipe="nvfp4-production", overrides={"train.log_every": 1},
                           description="The production recipe in small: NVFP4 (16-element blocks, E4M3 scales, "
                                       "2-D weight blocks, RHT on wgrad, stochastic rounding on gradients, first and "
                                       "last layer in BF16), hybrid Mamba-2/attention with latent MoE and MTP.")


def _study_specs() -> list[dict]:
    """Two ablations and their integration with leave-one-out arms: 4 distinct configs × 2 seeds to train,
    because arms with equal configs share one cached result; and the ablation of a data mix, whose arms are
    compared on each corpus (2 more configs × 2 seeds)."""
    specs = []
    bias, lower_lr, prose_mix = _idea(ROUTER_BIAS), _idea(LOWER_LR), _idea(PROSE_MIX)
    if bias and lower_lr:
        specs += [
            {"kind": "ablation", "ideas": [bias]},
            {"kind": "ablation", "ideas": [lower_lr]},
            {"kind": "integration", "ideas": [bias, lower_lr], "leave_one_out": True},
        ]
    if prose_mix:
        specs.append({"kind": "ablation", "ideas": [prose_mix], "baseline": CORPORA_BASELINE})
    # The FP4 ideas against the NVFP4 baseline: one shared baseline arm and three knobs, 4 configs × 2 seeds.
    specs += [{"kind": "ablation", "ideas": [idea], "baseline": FP4_BASELINE, "steps": FP4_DEMO_STEPS}
              for idea in map(_idea, FP4_PATCHES) if idea]
    return specs


def _title(spec: dict) -> str:
    keys = " + ".join(idea.key for idea in spec["ideas"])
    on = f" on {spec['baseline']}" if "baseline" in spec else ""
    return f"Demo {spec['kind']}: {keys}{on}"


def _baseline(spec: dict) -> str:
    return spec.get("baseline", "tiny-ci")


def _steps(spec: dict) -> int:
    return spec.get("steps", DEMO_STEPS)


def _train(configs: dict[str, tuple[str, dict]], out: TextIO) -> None:
    """Train every config not in the cache (a few at a time) and cache its metrics.jsonl."""
    missing = [(digest, recipe, overrides) for digest, (recipe, overrides) in configs.items()
               if not (cache_dir() / f"{digest}.jsonl").exists()]
    if not missing:
        return
    out.write(f"Training {len(missing)} runs for the demo (cached in {cache_dir()}) …\n")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flightdeck-demo-") as scratch:
        for start in range(0, len(missing), PARALLEL_TRAINERS):
            batch = missing[start:start + PARALLEL_TRAINERS]
            processes = []
            for digest, recipe, overrides in batch:
                run_dir = Path(scratch) / digest
                command = launcher.base_command(recipe, overrides, run_dir) + ["--wandb-mode", "disabled"]
                processes.append((digest, run_dir, subprocess.Popen(
                    command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )))
            for digest, run_dir, process in processes:
                output, _ = process.communicate()
                if process.returncode != 0:
                    raise RuntimeError(f"demo training of config {digest[:12]} failed:\n{output[-2000:]}")
                shutil.copyfile(run_dir / METRICS_FILE, cache_dir() / f"{digest}.jsonl")


def _replay(run: Run, revision: tuple[str, bool]) -> None:
    """Finish a queued run from its cached metrics through the attempt state machine."""
    source = cache_dir() / f"{run.config_hash}.jsonl"
    run.run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, run.run_dir / METRICS_FILE)
    records = monitor.MetricsTail(run.run_dir / METRICS_FILE).read_new()
    attempt = run.attempts.get()
    attempts.attempt_claim(attempt.pk, host=DEMO_HOST, slot_ids=None)
    attempts.attempt_started(attempt.pk, pid=None, pgid=None, code_revision=revision[0], code_dirty=revision[1])
    monitor.ingest(run, records)
    attempts.attempt_finish(attempt.pk, host=DEMO_HOST, state=RunStatus.SUCCEEDED, exit_code=0,
                            reason=f"demo: replayed {len(records)} steps of cached {run.recipe} training")
    # Keep the real training's wall time, so cost and throughput columns show real numbers.
    started, finished = (datetime.fromtimestamp(records[i]["time"], tz=dt_timezone.utc) for i in (0, -1))
    Attempt.objects.filter(pk=attempt.pk).update(started_at=started, finished_at=finished)
    Run.objects.filter(pk=run.pk).update(started_at=started, finished_at=finished,
                                         gpu_hours=(finished - started).total_seconds() / 3600)


def _demo_user():
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("pk").first()


def seed(out: TextIO | None = None) -> None:
    """Baselines and finished demo studies (idempotent: studies that exist by title are kept)."""
    out = out or sys.stdout
    _baselines()
    user = _demo_user()
    specs = [spec for spec in _study_specs() if not Study.objects.filter(title=_title(spec)).exists()]
    if user is None or not specs:
        out.write(f"Experiments demo: {Study.objects.count()} studies (nothing to add).\n")
        return
    plans = [(spec, plan_study(kind=spec["kind"], baseline=_baseline(spec), ideas=[i.key for i in spec["ideas"]],
                               seeds=DEMO_SEEDS, max_steps=_steps(spec),
                               leave_one_out=spec.get("leave_one_out", False)))
             for spec in specs]
    _train({run.config_hash: (plan.baseline.recipe, run.overrides) for _, plan in plans for run in plan.runs}, out)
    revision = launcher.code_revision()
    for spec, _ in plans:
        with transaction.atomic():
            study = services.study_launch(user=user, kind=spec["kind"], baseline=_baseline(spec),
                                          ideas=[i.key for i in spec["ideas"]], seeds=DEMO_SEEDS,
                                          max_steps=_steps(spec), leave_one_out=spec.get("leave_one_out", False),
                                          title=_title(spec))
            for run in study.runs.all():
                _replay(run, revision)
    out.write(f"Experiments demo: baselines tiny-ci, nano-baseline, {CORPORA_BASELINE}, {FP4_BASELINE}; "
              f"{len(plans)} finished studies added.\n")


def start_live_demo_study() -> Study | None:
    """Launch one small integration study for workers to train, unless one is still live; None then
    (or when the demo ideas are missing)."""
    live = Study.objects.filter(title=LIVE_TITLE, runs__status__in=LIVE_STATES).first()
    bias, lower_lr, user = _idea(ROUTER_BIAS), _idea(LOWER_LR), _demo_user()
    if live or not (bias and lower_lr and user):
        return None
    _baselines()
    return services.study_launch(user=user, kind="integration", baseline="tiny-ci", ideas=[bias.key, lower_lr.key],
                                 seeds=DEMO_SEEDS, max_steps=LIVE_STEPS, title=LIVE_TITLE)
