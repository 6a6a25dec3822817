"""Equivalence with transformers' NemotronHForCausalLM in both directions, and the exchange format's errors."""

import json

import pytest
import torch
from transformers import NemotronHConfig, NemotronHForCausalLM

from modelzoo.config import ModelConfig, apply_model_overrides
from modelzoo.export import ExportError, from_hf, to_hf
from modelzoo.model import HybridLM

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = {"hidden_size": 32, "vocab_size": 96, "initializer_range": 0.1, "mamba.num_heads": 4, "mamba.head_dim": 8,
         "mamba.state_size": 8, "mamba.chunk_size": 8, "mlp.intermediate_size": 48, "moe.num_experts": 4,
         "moe.top_k": 2, "moe.intermediate_size": 16, "moe.shared_intermediate_size": 24}
CASES = {
    "gqa-groups2-shared": {"pattern": "M*ME", "mamba.n_groups": 2, "attention.num_heads": 4,
                           "attention.num_kv_heads": 2},
    "mha-latent-noshared": {"pattern": "ME-*M", "mamba.n_groups": 1, "attention.num_heads": 4,
                            "attention.num_kv_heads": 4, "moe.latent_size": 16, "moe.shared_intermediate_size": 0,
                            "moe.routed_scaling_factor": 2.5},
    "groups4-grouped-routing-mtp": {"pattern": "*EMM-", "mamba.n_groups": 4, "attention.num_heads": 2,
                                    "attention.num_kv_heads": 1, "moe.n_group": 2, "moe.topk_group": 1,
                                    "moe.norm_topk_prob": False, "mtp.depth": 1, "mtp.pattern": "*E"},
}


def _ours(case: str) -> HybridLM:
    torch.manual_seed(0)
    model = HybridLM(apply_model_overrides(ModelConfig(), {**SMALL, **CASES[case]})).eval()
    _perturb(model)
    return model


@torch.no_grad()
def _perturb(model: torch.nn.Module) -> None:
    """Move the parameters initialised to constants (norm weights, D, routing bias) off their init values."""
    for name, tensor in model.state_dict().items():
        if "norm" in name or name.endswith((".D", "e_score_correction_bias")):
            tensor.add_(torch.randn_like(tensor) * 0.1)


def _ids(vocab: int = 96) -> torch.Tensor:
    return torch.randint(0, vocab, (2, 21), generator=torch.Generator().manual_seed(1))  # 21: not a chunk multiple


@pytest.mark.parametrize("case", sorted(CASES))
def test_exported_model_gives_our_logits_in_transformers_and_round_trips(case, tmp_path):
    ours = _ours(case)
    to_hf(ours, tmp_path / "hf")
    theirs = NemotronHForCausalLM.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        expected, actual = ours(_ids()).logits, theirs(_ids()).logits
    assert expected.abs().max() > 0.5  # not a comparison of near-zero tensors
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)

    back = from_hf(tmp_path / "hf")
    assert back.cfg == ours.cfg
    original, restored = ours.state_dict(), back.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[name], restored[name]) for name in original)


@pytest.mark.parametrize("layers, kv_heads, n_groups", [(["linear_attention", "moe", "full_attention", "mlp"], 2, 2),
                                                        (["full_attention", "linear_attention", "moe"], 4, 1)])
def test_transformers_model_imports_with_the_same_logits(layers, kv_heads, n_groups, tmp_path):
    torch.manual_seed(0)
    config = NemotronHConfig(
        vocab_size=80, hidden_size=32, layers_block_type=layers, num_attention_heads=4, num_key_value_heads=kv_heads,
        head_dim=8, intermediate_size=40, mamba_num_heads=4, mamba_head_dim=8, ssm_state_size=8, n_groups=n_groups,
        chunk_size=8, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
        moe_shared_expert_intermediate_size=24, moe_latent_size=16 if n_groups == 1 else None, initializer_range=0.1,
    )
    theirs = NemotronHForCausalLM(config).eval()
    _perturb(theirs)
    theirs.save_pretrained(tmp_path / "hf")
    ours = from_hf(tmp_path / "hf")
    assert ours.cfg.mamba.n_groups == n_groups and ours.cfg.attention.num_kv_heads == kv_heads
    with torch.no_grad():
        expected, actual = theirs(_ids(80)).logits, ours(_ids(80)).logits
    assert expected.abs().max() > 0.5
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_other_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ExportError, match="'llama'.*LlamaForCausalLM"):
        from_hf(tmp_path)
    with pytest.raises(ExportError, match="no config.json"):
        from_hf(tmp_path / "missing")


def test_unsupported_or_inconsistent_directories_are_refused(tmp_path):
    out = to_hf(_ours("gqa-groups2-shared"), tmp_path / "hf")
    (out / "model.safetensors").rename(tmp_path / "weights.safetensors")
    with pytest.raises(ExportError, match="no model.safetensors"):
        from_hf(out)
    (tmp_path / "weights.safetensors").rename(out / "model.safetensors")

    config = json.loads((out / "config.json").read_text())
    config["modelzoo_config"]["hidden_size"] = 64
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="does not match its config.*shape"):
        from_hf(out)
    config["mlp_bias"] = True
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="mlp_bias"):
        from_hf(out)


def test_export_refuses_a_used_directory_and_a_model_transformers_cannot_express(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an empty directory"):
        to_hf(_ours("gqa-groups2-shared"), used)
    assert [p.name for p in used.iterdir()] == ["notes.txt"]

    unclamped = HybridLM(apply_model_overrides(_ours("gqa-groups2-shared").cfg, {"mamba.dt_clamp_in_forward": False}))
    with pytest.raises(ExportError, match="dt_clamp_in_forward"):
        to_hf(unclamped, tmp_path / "unclamped")
    assert list(tmp_path.iterdir()) == [used]  # nothing half-written
