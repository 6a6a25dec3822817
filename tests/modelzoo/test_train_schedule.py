"""Learning-rate schedule and AdamW parameter groups of the trainer."""

from __future__ import annotations

import math

import pytest

from modelzoo.config import OptimConfig, load_recipe
from modelzoo.model import HybridLM
from modelzoo.schedule import build_optimizer, learning_rate, parameter_groups


def test_warmup_then_cosine_to_min_lr() -> None:
    optim = OptimConfig(lr=1.0, min_lr=0.1, warmup_steps=4)
    max_steps = 14
    lrs = [learning_rate(step, optim, max_steps) for step in range(max_steps)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # Decay covers updates 4..13 (9 intervals); the cosine is evaluated by hand at its ends and middle.
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[13] == pytest.approx(0.1)
    middle = 4 + 4.5
    assert learning_rate(middle, optim, max_steps) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_no_warmup_starts_at_full_lr() -> None:
    assert learning_rate(0, OptimConfig(lr=2e-3, min_lr=2e-4, warmup_steps=0), 100) == pytest.approx(2e-3)


def test_weight_decay_skips_norms_biases_ssm_scalars_and_embeddings() -> None:
    model = HybridLM(load_recipe("tiny-ci").model)
    names = {id(p): name for name, p in model.named_parameters()}
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    decayed = {names[id(p)] for p in decay["params"]}
    plain = {names[id(p)] for p in no_decay["params"]}
    assert "embeddings.weight" in plain and "norm_f.weight" in plain
    assert any(name.endswith("A_log") for name in plain) and any(name.endswith("dt_bias") for name in plain)
    assert "lm_head.weight" in decayed and any(name.endswith("q_proj.weight") for name in decayed)
    assert decayed.isdisjoint(plain) and decayed | plain == set(names.values())
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert build_optimizer(model, OptimConfig(weight_decay=0.1)).defaults["betas"] == (0.9, 0.95)
