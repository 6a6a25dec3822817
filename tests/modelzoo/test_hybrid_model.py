"""HybridLM: loss conventions, MTP, NVFP4 layer placement, backends, initialisation, and that it trains."""

import math

import pytest
import torch
import torch.nn.functional as F

from modelzoo.backends import BackendError, resolve_kernels
from modelzoo.config import ConfigError, ModelConfig, apply_model_overrides, load_recipe
from modelzoo.fp4 import FP4Linear
from modelzoo.model import HybridLM

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = load_recipe("tiny-ci").model


def _model(**overrides) -> HybridLM:
    torch.manual_seed(0)
    return HybridLM(apply_model_overrides(TINY, overrides))


def test_loss_is_shifted_next_token_cross_entropy_with_ignore_index():
    model = _model()
    ids = torch.randint(0, 256, (2, 17))
    labels = ids.clone()
    labels[0, 5] = -100
    out = model(ids, labels=labels)
    assert out.logits.shape == (2, 17, 256)
    logp = out.logits[:, :-1].double().log_softmax(-1)
    target = labels[:, 1:]
    keep = target != -100
    expected = -logp.gather(-1, target.clamp(min=0)[..., None])[..., 0][keep].mean()
    assert abs(out.aux["lm_loss"].item() - expected.item()) < 1e-5
    # untrained: close to uniform over the vocabulary
    assert abs(out.loss.item() - math.log(256)) < 0.1
    assert model(ids).loss is None


def test_aux_reports_moe_balance_per_layer():
    model = _model(pattern="MEE")
    out = model(torch.randint(0, 256, (2, 16)))
    assert len(out.aux["expert_load"]) == 2 and out.aux["expert_load"][0].shape == (TINY.moe.num_experts,)
    assert len(out.aux["moe_imbalance_per_layer"]) == 2 and out.aux["moe_imbalance"] >= 1.0
    assert _model(pattern="M*-").forward(torch.zeros(1, 4, dtype=torch.long)).aux["moe_imbalance"] is None


def test_mtp_loss_is_weighted_mean_of_depth_losses_and_predicts_further_tokens():
    model = _model(**{"mtp.depth": 2, "mtp.loss_weight": 0.3, "mtp.pattern": "*-"}).eval()  # eval: routing bias frozen
    ids = torch.randint(0, 256, (2, 12))
    out = model(ids, labels=ids)
    assert len(out.aux["mtp_losses"]) == 2
    expected = out.aux["lm_loss"].item() + 0.3 / 2 * sum(out.aux["mtp_losses"])
    assert abs(out.loss.item() - expected) < 1e-5

    # depth 1 at position t must see token t+1 and be scored on token t+2: check by recomputing it by hand
    hidden, _ = model.backbone(ids)
    depth = model.mtp.depths[0]
    h1, _ = depth(hidden[:, :11], model.embeddings(ids[:, 1:]))
    logits = model.lm_head(depth.final_norm(h1[:, :10]))
    manual = F.cross_entropy(logits.flatten(0, 1), ids[:, 2:].flatten())
    assert abs(manual.item() - out.aux["mtp_losses"][0]) < 1e-5


def test_mtp_layers_are_causal():
    model = _model(**{"mtp.depth": 1})
    ids = torch.randint(0, 256, (1, 10))
    hidden, _ = model.backbone(ids)
    changed = ids.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 256
    h_changed, _ = model.backbone(changed)
    depth = model.mtp.depths[0]
    a, _ = depth(hidden[:, :9], model.embeddings(ids[:, 1:]))
    b, _ = depth(h_changed[:, :9], model.embeddings(changed[:, 1:]))
    torch.testing.assert_close(a[:, :6], b[:, :6])  # position t reads token t+1, so t <= 5 is unaffected


def test_whole_model_is_causal():
    model = _model(pattern="M*ME-")
    ids = torch.randint(0, 256, (1, 20))
    changed = ids.clone()
    changed[0, 13:] = (changed[0, 13:] + 7) % 256
    torch.testing.assert_close(model(changed).logits[:, :13], model(ids).logits[:, :13])


def test_fp4_keeps_first_and_last_blocks_in_high_precision():
    model = _model(pattern="M-M-E", **{"fp4.enabled": True, "fp4.bf16_first_layers": 1, "fp4.bf16_last_layers": 1})
    fp4_blocks = [i for i, block in enumerate(model.layers) if any(isinstance(m, FP4Linear) for m in block.modules())]
    assert fp4_blocks == [1, 2, 3]
    assert not isinstance(model.lm_head, FP4Linear)
    ids = torch.randint(0, 256, (2, 16))
    out = model(ids, labels=ids)
    assert 0 < out.aux["fp4_error"] < 0.5


def test_backend_choice():
    assert _model(backend="torch").backend == "torch"
    assert _model(backend="auto").backend == ("cuda" if resolve_kernels("auto").name == "cuda" else "torch")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA"):
            _model(backend="cuda")


def test_invalid_config_is_rejected_at_construction():
    with pytest.raises(ConfigError, match="attention.num_kv_heads"):
        HybridLM(ModelConfig(attention=type(TINY.attention)(num_heads=4, num_kv_heads=3)))


def test_initialisation_follows_nemotron_h():
    model = _model()
    mixer = model.layers[0].mixer
    assert torch.equal(mixer.A_log, torch.log(torch.arange(1.0, TINY.mamba.num_heads + 1)))
    dt = F.softplus(mixer.dt_bias)
    assert ((dt >= TINY.mamba.time_step_min * 0.999) & (dt <= TINY.mamba.time_step_max * 1.001)).all()
    assert abs(model.embeddings.weight.std().item() - TINY.initializer_range) < 0.002
    bound = 1 / math.sqrt(mixer.out_proj.in_features) / math.sqrt(TINY.num_layers)  # kaiming(a=sqrt5) / sqrt(L)
    assert mixer.out_proj.weight.abs().max() <= bound


def test_tiny_ci_learns_a_repeating_sequence():
    torch.manual_seed(0)
    model = HybridLM(TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.arange(64).remainder(16).repeat(4, 1)
    first = None
    for _ in range(30):
        loss = model(ids, labels=ids).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
