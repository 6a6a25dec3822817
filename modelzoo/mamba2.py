"""Mamba-2 mixer with the semantics of transformers' NemotronHMamba2Mixer.

in_proj -> [z | x B C | dt]; causal depthwise conv1d + SiLU over (x, B, C); SSD scan with A = -exp(A_log),
dt = softplus(dt + dt_bias) (clamped below at time_step_min when ``mamba.dt_clamp_in_forward``), D skip;
gated grouped RMSNorm with z; out_proj. Parameter names equal the transformers ones, so export is a rename.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.backends import Kernels
from modelzoo.config import FP4Config, ModelConfig
from modelzoo.fp4 import make_linear
from modelzoo.norms import GatedRMSNorm, at_least_float32
from modelzoo.ssd import ssd_chunked, ssd_step


@dataclass
class MambaState:
    """Generation cache of one Mamba layer: the last conv_kernel-1 conv inputs and the SSM state."""

    conv: torch.Tensor  # [b, conv_dim, conv_kernel - 1]
    ssm: torch.Tensor  # [b, heads, head_dim, state_size], at least float32


class Mamba2Mixer(nn.Module):
    def __init__(self, cfg: ModelConfig, fp4: FP4Config | None, kernels: Kernels) -> None:
        super().__init__()
        m = cfg.mamba
        self.num_heads, self.head_dim = m.num_heads, m.head_dim
        self.state_size, self.n_groups = m.state_size, m.n_groups
        self.inner_size = m.num_heads * m.head_dim
        self.conv_dim = self.inner_size + 2 * m.n_groups * m.state_size
        self.chunk_size = m.chunk_size
        self.dt_min = m.time_step_min if m.dt_clamp_in_forward else 0.0
        self.kernels = kernels

        self.in_proj = make_linear(cfg.hidden_size, self.inner_size + self.conv_dim + m.num_heads, False, fp4)
        # Depthwise causal conv; padding is applied by hand so a cached prefix can take its place.
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, m.conv_kernel, groups=self.conv_dim, bias=m.use_conv_bias)
        self.dt_bias = nn.Parameter(torch.ones(m.num_heads))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, m.num_heads + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(m.num_heads))
        self.norm = GatedRMSNorm(self.inner_size, m.n_groups, cfg.norm_eps)
        self.out_proj = make_linear(self.inner_size, cfg.hidden_size, False, fp4)

    def empty_state(self, batch: int, device: torch.device) -> MambaState:
        kernel = self.conv1d.kernel_size[0]
        return MambaState(
            conv=torch.zeros(batch, self.conv_dim, kernel - 1, device=device, dtype=self.conv1d.weight.dtype),
            ssm=torch.zeros(
                batch, self.num_heads, self.head_dim, self.state_size,
                device=device, dtype=at_least_float32(self.conv1d.weight.dtype),
            ),
        )

    def forward(self, hidden: torch.Tensor, state: MambaState | None = None) -> torch.Tensor:
        """``hidden`` [b, l, hidden]; with ``state`` the layer continues from it and updates it in place."""
        z, xBC, dt = self.in_proj(hidden).split([self.inner_size, self.conv_dim, self.num_heads], dim=-1)
        xBC = self._conv_silu(xBC, state)
        x, B, C = xBC.split([self.inner_size, self.n_groups * self.state_size, self.n_groups * self.state_size], dim=-1)

        # The scan runs in at least float32, as in transformers.
        wide = at_least_float32(hidden.dtype)
        A = -torch.exp(self.A_log.to(wide))
        dt = F.softplus(dt.to(wide) + self.dt_bias.to(wide)).clamp(min=self.dt_min)
        x = x.unflatten(-1, (self.num_heads, self.head_dim)).to(wide)
        B = B.unflatten(-1, (self.n_groups, self.state_size)).to(wide)
        C = C.unflatten(-1, (self.n_groups, self.state_size)).to(wide)

        y = self._scan(x, dt, A, B, C, state)
        y = y + x * self.D[:, None].to(wide)
        y = self.norm(y.flatten(-2), z)
        return self.out_proj(y.to(hidden.dtype))

    def _conv_silu(self, xBC: torch.Tensor, state: MambaState | None) -> torch.Tensor:
        """silu(causal depthwise conv) along the sequence of ``xBC`` [b, l, conv_dim]."""
        channels_first = xBC.transpose(1, 2)
        kernel = self.conv1d.kernel_size[0]
        weight, bias = self.conv1d.weight, self.conv1d.bias
        if state is None and self.kernels.causal_conv1d is not None and xBC.is_cuda:
            out = self.kernels.causal_conv1d(channels_first.contiguous(), weight.squeeze(1), bias, activation="silu")
            return out.transpose(1, 2)
        if state is None:
            padded = F.pad(channels_first, (kernel - 1, 0))
        else:
            padded = torch.cat([state.conv.to(channels_first.dtype), channels_first], dim=-1)
            state.conv = padded[..., padded.shape[-1] - (kernel - 1) :]
        return F.silu(F.conv1d(padded, weight, bias, groups=self.conv_dim)).transpose(1, 2)

    def _scan(self, x, dt, A, B, C, state: MambaState | None) -> torch.Tensor:
        if state is not None and x.shape[1] == 1:
            y, state.ssm = ssd_step(state.ssm.to(x.dtype), x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])
            return y[:, None]
        initial = None if state is None else state.ssm
        if self.kernels.chunk_scan is not None and x.is_cuda:
            y, final = self.kernels.chunk_scan(
                x, dt, A, B, C, self.chunk_size, initial_states=initial, return_final_states=True
            )
        else:
            y, final = ssd_chunked(x, dt, A, B, C, self.chunk_size, initial)
        if state is not None:
            state.ssm = final
        return y
