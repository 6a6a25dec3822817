"""HybridLM.compile_regions(): the compiled training step equals the eager one, without graph breaks or
recompiles. Compilation is slow on CPU, so this is the one compiled-model test, on a tiny config."""

import pytest
import torch
from torch._dynamo.utils import counters

from modelzoo.config import apply_model_overrides, load_recipe
from modelzoo.model import HybridLM

pytestmark = pytest.mark.usefixtures("single_thread")

# Every block kind, two Mamba layers (they must share one compiled core) and NVFP4 in the middle blocks.
TINY = apply_model_overrides(
    load_recipe("tiny-ci").model,
    {"pattern": "M*MEM-", "hidden_size": 32, "mamba.num_heads": 4, "mamba.head_dim": 8, "mamba.state_size": 8,
     "mamba.chunk_size": 8, "moe.num_experts": 4, "moe.intermediate_size": 16, "moe.shared_intermediate_size": 16,
     "mlp.intermediate_size": 32, "fp4.enabled": True, "fp4.stochastic_rounding": False},
)


def _train(model: HybridLM, ids: torch.Tensor, steps: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    losses = []
    for _ in range(steps):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.timeout(900)  # compiles 5 regions forward and backward: ~N s on the 2-core CI box
def test_compiled_regions_train_like_eager_without_graph_breaks_or_recompiles():
    torch.manual_seed(0)
    eager = HybridLM(TINY)
    compiled = HybridLM(TINY)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_regions()
    ids = torch.randint(0, TINY.vocab_size, (2, 16))
    torch._dynamo.reset()
    counters.clear()

    compiled_losses = _train(compiled, ids, 1)
    graphs_after_first_step = counters["stats"]["unique_graphs"]
    compiled_losses += _train(compiled, ids, 1)  # a new optimizer is fine: only the model is compiled

    assert counters["graph_break"] == {}
    assert counters["stats"]["unique_graphs"] == graphs_after_first_step  # the second step reused every graph
    # one graph per region kind: the shared Mamba core, attention, MoE, MLP
    assert graphs_after_first_step == 4
    eager_losses = _train(eager, ids, 1) + _train(eager, ids, 1)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4)
    for (name, ours), theirs in zip(compiled.named_parameters(), eager.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5, msg=name)
