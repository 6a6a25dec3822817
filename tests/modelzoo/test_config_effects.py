"""Which config keys have no effect, checked against what the model really builds: a patch to an inactive key
must leave the model's parameters and its forward pass unchanged."""
import pytest
import torch

from modelzoo.config import Recipe, apply_overrides, load_recipe
from modelzoo.config_effects import inactive_reason, inactive_sections
from modelzoo.model import HybridLM


def _flat(recipe: Recipe) -> dict:
    """The resolved config with dotted keys spelled as patches spell them (model keys without "model.")."""
    def walk(prefix: str, node: dict) -> dict:
        flat = {}
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            flat.update(walk(name, value) if isinstance(value, dict) else {name: value})
        return flat

    return {key: value for section, body in recipe.to_dict().items()
            for key, value in walk("" if section == "model" else section, body).items()}


def test_a_default_recipe_names_its_switched_off_parts():
    config = _flat(load_recipe("tiny-ci"))

    assert inactive_sections(config) == {
        "fp4": "FP4 is off in this config (fp4.enabled = false)",
        "mtp": "multi-token prediction is off in this config (mtp.depth = 0)",
        "mlp": "the layer pattern 'M*ME' has no MLP (-) layer",
        "data.bpe_vocab_size": "the tokenizer is 'byte', not 'bpe'",
    }
    assert inactive_reason("fp4.enabled", config) == ""  # the switch itself always matters
    assert inactive_reason("moe.top_k", config) == ""


def test_the_mtp_block_makes_its_sections_active():
    config = _flat(apply_overrides(load_recipe("tiny-ci"), {"pattern": "M*M*", "mtp.depth": 1, "mtp.pattern": "*E"}))

    assert "moe" not in inactive_sections(config)  # the MTP block has an MoE layer
    assert inactive_reason("mlp.intermediate_size", config) == (
        "the layer pattern 'M*M*' and the MTP pattern '*E' has no MLP (-) layer")


@pytest.mark.parametrize("patch", [{"fp4.stochastic_rounding": False, "fp4.rht": False},
                                   {"mlp.intermediate_size": 96}, {"mtp.loss_weight": 0.7}])
def test_keys_called_inactive_change_neither_parameters_nor_outputs(patch):
    base = load_recipe("tiny-ci")
    patched = apply_overrides(base, patch)
    assert all(inactive_reason(key, _flat(patched)) for key in patch)

    tokens = torch.randint(0, base.model.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    built = []
    for recipe in (base, patched):
        torch.manual_seed(0)
        model = HybridLM(recipe.model).eval()
        with torch.no_grad():
            built.append(({name: p.shape for name, p in model.named_parameters()}, model(tokens).logits))
    (shapes_a, logits_a), (shapes_b, logits_b) = built
    assert shapes_a == shapes_b
    torch.testing.assert_close(logits_a, logits_b, rtol=0, atol=0)


def test_a_key_called_active_does_change_the_model():
    """The check above can fail: an active key (the MoE width) changes the parameters."""
    base = load_recipe("tiny-ci")
    patched = apply_overrides(base, {"moe.intermediate_size": 96})
    assert inactive_reason("moe.intermediate_size", _flat(patched)) == ""
    counts = [sum(p.numel() for p in HybridLM(recipe.model).parameters()) for recipe in (base, patched)]
    assert counts[0] != counts[1]
