"""modelzoo.sizing's parameter count against the parameters of a built model (on the meta device)."""
import pytest
import torch

from modelzoo.config import apply_overrides, load_recipe
from modelzoo.model import HybridLM
from modelzoo.sizing import parameter_count


@pytest.mark.parametrize("recipe, overrides", [
    ("tiny-ci", {}), ("tiny-ci", {"moe.latent_size": 32}), ("tiny-ci", {"mtp.depth": 1}),
    ("nano-baseline", {"moe.num_experts": 16, "attention.num_kv_heads": 1}),
])
def test_the_count_matches_a_built_model_within_one_percent(recipe, overrides):
    config = apply_overrides(load_recipe(recipe), overrides).model
    with torch.device("meta"):
        built = sum(parameter.numel() for parameter in HybridLM(config).parameters())
    assert parameter_count(config) == pytest.approx(built, rel=0.01)
