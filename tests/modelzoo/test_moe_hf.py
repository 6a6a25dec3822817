"""Our MoE layer against transformers' NemotronHMoE with the same weights (float32, evaluation mode)."""

import pytest
import torch
from transformers import NemotronHConfig
from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHMoE

from modelzoo.config import ModelConfig, MoEConfig
from modelzoo.moe import MoE

HIDDEN = 32


@pytest.mark.parametrize(
    "latent_size, n_group, topk_group, norm_topk_prob",
    [(0, 1, 1, True), (16, 1, 1, True), (0, 4, 2, False), (16, 2, 1, True)],
)
def test_moe_matches_transformers_nemotron_h(latent_size, n_group, topk_group, norm_topk_prob):
    torch.manual_seed(0)
    moe_cfg = MoEConfig(
        num_experts=8, top_k=3, intermediate_size=24, shared_intermediate_size=40, latent_size=latent_size,
        routed_scaling_factor=2.5, norm_topk_prob=norm_topk_prob, n_group=n_group, topk_group=topk_group,
    )
    ours = MoE(ModelConfig(hidden_size=HIDDEN, initializer_range=0.2, moe=moe_cfg), fp4=None).eval()
    with torch.no_grad():
        # A non-zero correction bias makes selection differ from plain score ranking.
        ours.gate.e_score_correction_bias.normal_(std=0.1)

    hf_cfg = NemotronHConfig(
        hidden_size=HIDDEN, n_routed_experts=8, num_experts_per_tok=3, moe_intermediate_size=24,
        moe_shared_expert_intermediate_size=40, moe_latent_size=latent_size or None, routed_scaling_factor=2.5,
        norm_topk_prob=norm_topk_prob, n_group=n_group, topk_group=topk_group, mlp_hidden_act="relu2",
        mlp_bias=False,
    )
    hf_cfg._experts_implementation = "eager"
    theirs = NemotronHMoE(hf_cfg).eval()
    # strict: every parameter and buffer name and shape must line up, so export is a pure copy.
    theirs.load_state_dict(ours.state_dict(), strict=True)

    x = torch.randn(3, 11, HIDDEN)
    with torch.no_grad():
        expected = theirs(x)
        actual, _ = ours(x)
    assert expected.abs().max() > 0.1  # the comparison is not between two near-zero tensors
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
