"""Mamba-2 mixer: recurrent (generation) mode against the parallel forward, causality, and the dt clamp."""

import pytest
import torch

from modelzoo.backends import Kernels
from modelzoo.config import ModelConfig, apply_model_overrides
from modelzoo.mamba2 import Mamba2Mixer

pytestmark = pytest.mark.usefixtures("single_thread")

CFG = apply_model_overrides(
    ModelConfig(),
    {"hidden_size": 24, "mamba.num_heads": 6, "mamba.head_dim": 4, "mamba.state_size": 5, "mamba.n_groups": 3,
     "mamba.chunk_size": 4},
)


def _mixer(cfg=CFG) -> Mamba2Mixer:
    torch.manual_seed(0)
    mixer = Mamba2Mixer(cfg, None, Kernels("torch")).double()
    with torch.no_grad():
        for param in mixer.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return mixer


def test_step_by_step_and_split_prefill_equal_parallel_forward():
    mixer = _mixer()
    x = torch.randn(2, 15, 24, dtype=torch.float64)
    parallel = mixer(x)

    state = mixer.empty_state(2, x.device)
    stepped = torch.cat([mixer(x[:, t : t + 1], state) for t in range(15)], dim=1)
    torch.testing.assert_close(stepped, parallel, rtol=1e-10, atol=1e-12)

    state = mixer.empty_state(2, x.device)
    prefix = mixer(x[:, :6], state)  # a multi-token prefill, then a multi-token continuation from the cache
    rest = torch.cat([mixer(x[:, 6:7], state), mixer(x[:, 7:], state)], dim=1)
    torch.testing.assert_close(torch.cat([prefix, rest], 1), parallel, rtol=1e-10, atol=1e-12)


def test_mixer_is_causal():
    mixer = _mixer()
    x = torch.randn(1, 12, 24, dtype=torch.float64)
    changed = x.clone()
    changed[:, 7:] = torch.randn(1, 5, 24, dtype=torch.float64)
    torch.testing.assert_close(mixer(changed)[:, :7], mixer(x)[:, :7], rtol=0, atol=0)


def test_dt_clamp_is_a_switch():
    clamped = _mixer()
    unclamped = _mixer(apply_model_overrides(CFG, {"mamba.dt_clamp_in_forward": False}))
    with torch.no_grad():
        for mixer in (clamped, unclamped):
            mixer.dt_bias.fill_(-20.0)  # softplus gives ~2e-9, far below time_step_min
    x = torch.randn(1, 5, 24, dtype=torch.float64)
    assert not torch.allclose(clamped(x), unclamped(x))
