"""MoE layer: dropless dispatch against a naive float64 reference, balancing, latent width, gradients, config errors."""

import pytest
import torch

from modelzoo.config import ConfigError, FP4Config, ModelConfig, MoEConfig
from modelzoo.fp4 import collect_stats
from modelzoo.moe import Experts, MoE
from modelzoo.moe_router import load_balancing_loss

HIDDEN = 16


def make_moe(seed: int = 0, fp4: FP4Config | None = None, **moe_fields) -> MoE:
    torch.manual_seed(seed)
    fields = dict(num_experts=6, top_k=2, intermediate_size=12, shared_intermediate_size=10, routed_scaling_factor=1.5)
    fields.update(moe_fields)
    moe = MoE(ModelConfig(hidden_size=HIDDEN, initializer_range=0.3, moe=MoEConfig(**fields)), fp4=fp4)
    return moe.eval()


@torch.no_grad()
def reference_choice(moe: MoE, token: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Experts chosen for one token, their combine weights and all sigmoid scores, in float64 (single group)."""
    gate = moe.gate
    scores = torch.sigmoid(gate.weight.double() @ token.double())
    biased = (scores + gate.e_score_correction_bias.double()).tolist()
    chosen = sorted(range(len(biased)), key=lambda e: -biased[e])[: gate.top_k]
    weights = scores[chosen]
    if gate.norm_topk_prob:
        weights = weights / weights.sum()
    return chosen, weights * gate.routed_scaling_factor, scores


@torch.no_grad()
def reference_output(moe: MoE, token: torch.Tensor) -> torch.Tensor:
    """The MoE output for one token, summing its chosen experts one by one in float64."""
    x = token.double()
    chosen, weights, _ = reference_choice(moe, token)
    expert_in = x if moe.fc1_latent_proj is None else moe.fc1_latent_proj.weight.double() @ x
    routed = torch.zeros_like(expert_in)
    for expert, weight in zip(chosen, weights):
        hidden = torch.relu(moe.experts.up_proj[expert].double() @ expert_in) ** 2
        routed += weight * (moe.experts.down_proj[expert].double() @ hidden)
    out = routed if moe.fc2_latent_proj is None else moe.fc2_latent_proj.weight.double() @ routed
    if moe.shared_experts is not None:
        shared = moe.shared_experts
        out = out + shared.down_proj.weight.double() @ torch.relu(shared.up_proj.weight.double() @ x) ** 2
    return out


@pytest.mark.parametrize("latent_size", [0, 8])
def test_every_token_gets_k_experts_and_the_exact_sum_even_when_routing_is_skewed(latent_size):
    moe = make_moe(latent_size=latent_size, top_k=3)
    with torch.no_grad():
        # Two experts attract every token: a capacity-limited MoE would drop most of their assignments.
        moe.gate.weight[:2] += 2.0 * torch.ones(HIDDEN)
    x = torch.randn(2, 24, HIDDEN).abs()
    y, stats = moe(x)

    tokens = x.reshape(-1, HIDDEN)
    chosen = moe.gate(tokens).experts
    assert chosen.shape == (48, 3)
    counts = torch.zeros(moe.num_experts)
    for n, token in enumerate(tokens):
        expected_experts, _, _ = reference_choice(moe, token)
        assert sorted(chosen[n].tolist()) == sorted(expected_experts)
        counts[expected_experts] += 1
        torch.testing.assert_close(y.reshape(-1, HIDDEN)[n].double(), reference_output(moe, token), rtol=1e-5, atol=1e-5)

    assert counts[:2].tolist() == [48, 48]  # the skew is real, and nothing was dropped
    torch.testing.assert_close(stats["expert_load"], counts / counts.sum())
    assert float(stats["imbalance"]) == pytest.approx((counts.max() / counts.mean()).item())
    assert stats["aux_loss"].item() == 0.0


def test_group_limited_routing_only_picks_experts_of_the_best_groups():
    moe = make_moe(num_experts=8, top_k=2, n_group=4, topk_group=1)
    with torch.no_grad():
        moe.gate.weight.zero_()
        # Per group of two experts: group 1 has the best pair sum, but the single best expert (6) is in group 3.
        moe.gate.e_score_correction_bias.copy_(torch.tensor([0.0, 0.0, 0.8, 0.8, 0.0, 0.0, 1.0, 0.0]))
    experts = moe.gate(torch.randn(5, HIDDEN)).experts
    assert all(sorted(row) == [2, 3] for row in experts.tolist())


def test_bias_balancing_reduces_imbalance_on_fixed_skewed_logits():
    moe = make_moe(num_experts=8, top_k=2, bias_update_rate=0.005).train()
    with torch.no_grad():
        # Random routing plus per-expert offsets along the inputs' shared mean: expert 7 beats expert 0.
        moe.gate.weight.normal_(std=0.25)
        moe.gate.weight += torch.linspace(-0.25, 0.25, 8).unsqueeze(1)
    x = torch.randn(8, 32, HIDDEN) + 1.0  # the same batch every step, so only the bias can change the load

    with torch.no_grad():
        imbalance = [moe(x)[1]["imbalance"] for _ in range(200)]
    assert imbalance[0] > 2.5
    # Fixed-size sign steps end in a small limit cycle rather than exact balance.
    assert sum(imbalance[-10:]) / 10 < 1.45
    assert "gate.e_score_correction_bias" in moe.state_dict()

    frozen = moe.gate.e_score_correction_bias.clone()
    moe.eval()
    moe(x)
    assert torch.equal(moe.gate.e_score_correction_bias, frozen), "evaluation must not move the bias"


def test_latent_moe_with_identity_projections_equals_plain_moe():
    plain = make_moe()
    latent = make_moe(seed=1, latent_size=HIDDEN)
    with torch.no_grad():
        for name, tensor in plain.state_dict().items():
            latent.state_dict()[name].copy_(tensor)
        latent.fc1_latent_proj.weight.copy_(torch.eye(HIDDEN))
        latent.fc2_latent_proj.weight.copy_(torch.eye(HIDDEN))
    x = torch.randn(3, 5, HIDDEN)
    torch.testing.assert_close(latent(x)[0], plain(x)[0], rtol=0, atol=1e-6)


def test_sequence_aux_loss_matches_the_textbook_formula():
    coef = 0.01
    moe = make_moe(aux_loss_coef=coef, bias_update_rate=0.0).train()
    x = torch.randn(3, 10, HIDDEN)
    loss = moe(x)[1]["aux_loss"]

    expected = 0.0
    for sequence in x:
        assigned = torch.zeros(moe.num_experts, dtype=torch.float64)
        prob = torch.zeros(moe.num_experts, dtype=torch.float64)
        for token in sequence:
            chosen, _, scores = reference_choice(moe, token)
            assigned[chosen] += 1
            prob += scores / scores.sum()
        share = assigned * moe.num_experts / (moe.gate.top_k * len(sequence))
        expected += coef * float((share * prob / len(sequence)).sum()) / len(x)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_batch_level_balancing_loss_is_one_for_uniform_balanced_routing():
    scores = torch.full((8, 4), 0.5)
    experts = torch.tensor([[0, 1], [2, 3]] * 4)
    assert load_balancing_loss(scores, experts, num_groups=1).item() == pytest.approx(1.0)


def test_gradients_reach_experts_gate_projections_and_shared_expert():
    moe = make_moe(latent_size=8, aux_loss_coef=0.1).train()
    x = torch.randn(2, 12, HIDDEN, requires_grad=True)
    y, stats = moe(x)
    (y.square().sum() + stats["aux_loss"]).backward()

    used = stats["expert_load"] > 0
    for name in ("up_proj", "down_proj"):
        grad_norms = getattr(moe.experts, name).grad.flatten(1).norm(dim=1)
        assert torch.equal(grad_norms > 0, used)
    for param in (moe.gate.weight, moe.fc1_latent_proj.weight, moe.fc2_latent_proj.weight,
                  moe.shared_experts.up_proj.weight, moe.shared_experts.down_proj.weight, x):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert not moe.gate.e_score_correction_bias.requires_grad


def test_aux_loss_alone_trains_the_router():
    moe = make_moe(aux_loss_coef=1.0).train()
    moe(torch.randn(2, 12, HIDDEN))[1]["aux_loss"].backward()
    assert moe.gate.weight.grad.abs().sum() > 0


def test_expert_dispatch_gradients_match_finite_differences():
    torch.manual_seed(0)
    experts = Experts(num_experts=4, width=5, intermediate_size=3, fp4=None).double()
    for weight in experts.parameters():
        torch.nn.init.normal_(weight, std=0.5)
    chosen = torch.tensor([[0, 2], [2, 1], [0, 2], [3, 0]])
    counts = torch.bincount(chosen.flatten(), minlength=4)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)

    def run(x, weights, up, down):
        return torch.func.functional_call(experts, {"up_proj": up, "down_proj": down}, (x, chosen, weights, counts))

    assert torch.autograd.gradcheck(run, (x, weights, experts.up_proj, experts.down_proj))


def test_nvfp4_reaches_the_expert_latent_and_shared_gemms():
    plain = make_moe(latent_size=8)
    quantized = make_moe(latent_size=8, fp4=FP4Config(enabled=True))
    quantized.load_state_dict(plain.state_dict())
    x = torch.randn(2, 16, HIDDEN)
    exact, approx = plain(x)[0], quantized(x)[0]

    relative_error = ((approx - exact).norm() / exact.norm()).item()
    assert 0 < relative_error < 0.3
    assert collect_stats(plain) == {}
    # experts + two latent projections + the shared expert's two linears
    assert collect_stats(quantized)["fp4_layers"] == 5


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"top_k": 7}, "moe.top_k"),
        ({"top_k": 0}, "moe.top_k"),
        ({"n_group": 4}, "moe.n_group"),
        ({"n_group": 6}, "moe.n_group"),
        ({"n_group": 2, "topk_group": 3}, "moe.topk_group"),
        ({"n_group": 3, "topk_group": 1, "top_k": 3}, "moe.top_k"),
        ({"latent_size": HIDDEN + 1}, "moe.latent_size"),
        ({"bias_update_rate": -0.1}, "moe.bias_update_rate"),
    ],
)
def test_bad_config_raises_naming_the_field(fields, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_moe(**fields)



@pytest.mark.parametrize("weight_2d_blocks", [True, False])
@pytest.mark.parametrize("rht", [True, False])
def test_grouped_nvfp4_experts_equal_the_per_expert_loop(weight_2d_blocks, rht):
    # Each expert quantizes its own operands with its own tensor scales, and its wgrad tokens are padded per expert:
    # the static-shape grouped path must reproduce linear_fn run expert by expert, forward and backward.
    fp4 = FP4Config(enabled=True, stochastic_rounding=False, weight_2d_blocks=weight_2d_blocks, rht=rht)
    torch.manual_seed(0)
    experts = Experts(num_experts=4, width=32, intermediate_size=48, fp4=fp4)
    for weight in experts.parameters():
        torch.nn.init.normal_(weight, std=0.3)
    tokens, top_k = 37, 2
    chosen = torch.stack([torch.randperm(4)[:top_k] for _ in range(tokens)])
    chosen[:20, 0] = 0  # a skewed segment next to short ones, none a multiple of 16
    weights = torch.rand(tokens, top_k)
    x = torch.randn(tokens, 32, requires_grad=True)
    counts = torch.bincount(chosen.flatten(), minlength=4)
    upstream = torch.randn(tokens, 32)

    def gradients(y: torch.Tensor) -> list[torch.Tensor]:
        return [y.detach(), *torch.autograd.grad(y, [x, experts.up_proj, experts.down_proj], upstream)]

    grouped = gradients(experts(x, chosen, weights, counts))
    order = chosen.flatten().argsort(stable=True)
    token_of_row = order // top_k
    per_expert = experts._fp4_experts_ref(x.index_select(0, token_of_row), counts.tolist())
    looped = torch.zeros(tokens, 32).index_add(0, token_of_row, per_expert * weights.flatten()[order, None])
    for got, want in zip(grouped, gradients(looped)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
