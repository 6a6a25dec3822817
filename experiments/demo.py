"""Demo data: the tiny-ci, nano-baseline and nvfp4-production baselines, ablation and integration studies on
them (tiny-ci for the router and LR ideas and a data mix; the NVFP4 production recipe for the FP4 area's ideas, so
their patches change real FP4 knobs), and a small live study for ``make run``.

Seeding only launches the studies through the real service, so their runs are queued for the Celery worker
that ``make run`` starts next: the site answers at once, and a newcomer watches the runs train and the charts
fill in instead of waiting for the demo to train before the first page.
"""
from __future__ import annotations

import sys
from typing import TextIO

from django.contrib.auth import get_user_model

from experiments import services
from experiments.models import LIVE_STATES, Study
from ideas.models import Idea

DEMO_SEEDS = [0, 1]
DEMO_STEPS = 20  # ~20 s of CPU per run on tiny-ci: these studies finish a few minutes after the worker starts
FP4_DEMO_STEPS = 10  # NVFP4 emulation costs ~3 s of CPU per step of nvfp4-production: 8 runs, ~4 CPU-minutes
LIVE_STEPS = 400
LIVE_TITLE = "Live demo: router bias rate + lower LR"

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
    """Two ablations and their integration with leave-one-out arms (arms with equal configs share a run), and
    the ablation of a data mix, whose arms are compared on each corpus."""
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


def _demo_user():
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("pk").first()


def seed(out: TextIO | None = None) -> None:
    """Baselines and the demo studies, queued for the worker (idempotent: studies that exist by title are
    kept, whatever state their runs are in)."""
    out = out or sys.stdout
    _baselines()
    user = _demo_user()
    specs = [spec for spec in _study_specs() if not Study.objects.filter(title=_title(spec)).exists()]
    if user is None or not specs:
        out.write(f"Experiments demo: {Study.objects.count()} studies (nothing to add).\n")
        return
    queued = 0
    for spec in specs:
        study = services.study_launch(user=user, kind=spec["kind"], baseline=_baseline(spec),
                                      ideas=[idea.key for idea in spec["ideas"]], seeds=DEMO_SEEDS,
                                      max_steps=_steps(spec), leave_one_out=spec.get("leave_one_out", False),
                                      title=_title(spec))
        queued += study.runs.count()
    out.write(f"Experiments demo: baselines tiny-ci, nano-baseline, {CORPORA_BASELINE}, {FP4_BASELINE}; "
              f"{len(specs)} studies launched, {queued} runs queued for the worker.\n")


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
