"""HybridLM.compile_regions(): the compiled training step equals the eager one, without graph breaks or
recompiles. Compilation is slow on CPU, so this is the one compiled-model test, on a tiny plain config (the
compiled NVFP4 layer is checked against its float64 reference in test_fp4_linear.py)."""

import os

import pytest
import torch
from torch._dynamo.utils import counters

from modelzoo.config import apply_model_overrides, load_recipe
from modelzoo.model import HybridLM
from modelzoo.trainer import use_inductor_cache

pytestmark = pytest.mark.usefixtures("single_thread")

# Every block kind, and two Mamba layers that must share one compiled core.
TINY = apply_model_overrides(
    load_recipe("tiny-ci").model,
    {"pattern": "M*ME-M", "hidden_size": 32, "mamba.num_heads": 4, "mamba.head_dim": 8, "mamba.state_size": 8,
     "mamba.n_groups": 1, "mamba.chunk_size": 8, "moe.num_experts": 4, "moe.intermediate_size": 16,
     "moe.shared_intermediate_size": 16, "mlp.intermediate_size": 32},
)


def _step(model: HybridLM, optimizer: torch.optim.Optimizer, ids: torch.Tensor) -> tuple[float, dict]:
    """One training step; returns the loss and the gradients it applied."""
    loss = model(ids, labels=ids).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return loss.item(), gradients


@pytest.mark.timeout(900)  # compiles 4 regions forward and backward: minutes on a busy 2-core box
def test_compiled_regions_train_like_eager_without_graph_breaks_or_recompiles():
    torch.manual_seed(0)
    eager = HybridLM(TINY)
    compiled = HybridLM(TINY)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_regions()
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True) for m in (eager, compiled)]
    ids = torch.randint(0, TINY.vocab_size, (2, 16))
    torch._dynamo.reset()
    counters.clear()

    for step in range(2):
        eager_loss, eager_grads = _step(eager, optimizers[0], ids)
        compiled_loss, compiled_grads = _step(compiled, optimizers[1], ids)
        if step == 0:
            # One graph per region kind: the Mamba core shared by both Mamba layers, attention, MoE and MLP.
            assert counters["stats"]["unique_graphs"] == 4
        assert compiled_loss == pytest.approx(eager_loss, rel=1e-5)
        assert compiled_grads.keys() == eager_grads.keys()
        for name, gradient in eager_grads.items():
            torch.testing.assert_close(compiled_grads[name], gradient, rtol=1e-4, atol=1e-6, msg=name)
    assert counters["stats"]["unique_graphs"] == 4  # the second step reused every graph: no recompiles
    assert not counters["graph_break"]


def test_the_inductor_cache_lives_under_the_var_dir_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("FLIGHTDECK_VAR_DIR", str(tmp_path / "var"))
    use_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "var" / "inductor-cache")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")
    use_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/elsewhere"
