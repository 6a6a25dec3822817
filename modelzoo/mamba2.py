"""Mamba-2 mixer with the semantics of transformers' NemotronHMamba2Mixer.

in_proj -> [z | x B C | dt]; causal depthwise conv1d + SiLU over (x, B, C); SSD scan with A = -exp(A_log),
dt = softplus(dt + dt_bias) (clamped below at time_step_min when ``mamba.dt_clamp_in_forward``), D skip;
gated grouped RMSNorm with z; out_proj. Parameter names equal the transformers ones, so export is a rename.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.backends import Kernels
from modelzoo.config import FP4Config, ModelConfig
from modelzoo.fp4 import make_linear
from modelzoo.norms import GatedRMSNorm, at_least_float32, gated_rms_norm
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
        self.kernels = kernels
        dt_min = m.time_step_min if m.dt_clamp_in_forward else 0.0
        self.sizes = MixerSizes(m.num_heads, m.head_dim, m.state_size, m.n_groups, m.chunk_size, dt_min, cfg.norm_eps)
        self.compiled_core: Callable | None = None  # set by HybridLM.compile_regions, shared by all Mamba layers

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
        fused = self.kernels if xBC.is_cuda and self.kernels.name == "cuda" else None
        # The compiled core (see ``HybridLM.compile_regions``) serves the stateless, unfused training forward only.
        core = self.compiled_core if state is None and fused is None and self.compiled_core else mixer_core
        # [conv_dim, 1, K] -> [K, conv_dim] outside the core, so that each shifted multiply-add reads a contiguous row.
        conv_weight = self.conv1d.weight[:, 0].t().contiguous()
        y = core(
            xBC, dt, z, conv_weight, self.conv1d.bias, self.A_log, self.dt_bias, self.D, self.norm.weight,
            self.sizes, state, fused,
        )
        return self.out_proj(y.to(hidden.dtype))


@dataclass(frozen=True)
class MixerSizes:
    """The constants of one Mamba-2 mixer that its core needs besides tensors."""

    num_heads: int
    head_dim: int
    state_size: int
    n_groups: int
    chunk_size: int
    dt_min: float
    norm_eps: float


def causal_conv_silu(xBC: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     state: MambaState | None = None) -> torch.Tensor:
    """silu(causal depthwise conv) along the sequence of ``xBC`` [b, l, channels], ``weight`` [K, channels].

    Computed as K shifted multiply-adds in the token-major layout, so nothing is transposed; with ``state`` the
    cached last K-1 inputs stand in for the zero padding and are replaced by this call's last K-1 inputs.
    """
    kernel, length = weight.shape[0], xBC.shape[1]
    if state is None:
        padded = F.pad(xBC, (0, 0, kernel - 1, 0))
    else:
        padded = torch.cat([state.conv.transpose(1, 2).to(xBC.dtype), xBC], dim=1)
        state.conv = padded[:, padded.shape[1] - (kernel - 1) :].transpose(1, 2)
    out = padded[:, :length] * weight[0]
    for shift in range(1, kernel):
        out = out + padded[:, shift : shift + length] * weight[shift]
    return F.silu(out if bias is None else out + bias)


def mixer_core(
    xBC: torch.Tensor,
    dt: torch.Tensor,
    z: torch.Tensor,
    conv_weight: torch.Tensor,
    conv_bias: torch.Tensor | None,
    A_log: torch.Tensor,
    dt_bias: torch.Tensor,
    D: torch.Tensor,
    norm_weight: torch.Tensor,
    sizes: MixerSizes,
    state: MambaState | None = None,
    fused: Kernels | None = None,
) -> torch.Tensor:
    """Everything between in_proj and out_proj: conv, SSD scan, D skip and gated norm; returns [b, l, inner].

    A function of its tensors (parameters passed in), so one compiled copy serves every Mamba layer.
    ``fused`` holds the CUDA kernels when they are to be used.
    """
    inner, group_width = sizes.num_heads * sizes.head_dim, sizes.n_groups * sizes.state_size
    if state is None and fused is not None and fused.causal_conv1d is not None:
        channels_first = xBC.transpose(1, 2).contiguous()
        weight = conv_weight.t().contiguous()
        xBC = fused.causal_conv1d(channels_first, weight, conv_bias, activation="silu").transpose(1, 2)
    else:
        xBC = causal_conv_silu(xBC, conv_weight, conv_bias, state)
    x, B, C = xBC.split([inner, group_width, group_width], dim=-1)

    # The scan runs in at least float32, as in transformers.
    wide = at_least_float32(z.dtype)
    A = -torch.exp(A_log.to(wide))
    dt = F.softplus(dt.to(wide) + dt_bias.to(wide)).clamp(min=sizes.dt_min)
    x = x.unflatten(-1, (sizes.num_heads, sizes.head_dim)).to(wide)
    B = B.unflatten(-1, (sizes.n_groups, sizes.state_size)).to(wide)
    C = C.unflatten(-1, (sizes.n_groups, sizes.state_size)).to(wide)

    y = _scan(x, dt, A, B, C, sizes.chunk_size, state, fused)
    y = y + x * D[:, None].to(wide)
    return gated_rms_norm(y.flatten(-2), z, norm_weight, sizes.n_groups, sizes.norm_eps)


def _scan(x, dt, A, B, C, chunk_size: int, state: MambaState | None, fused: Kernels | None) -> torch.Tensor:
    if state is not None and x.shape[1] == 1:
        y, state.ssm = ssd_step(state.ssm.to(x.dtype), x[:, 0], dt[:, 0], A, B[:, 0], C[:, 0])
        return y[:, None]
    initial = None if state is None else state.ssm
    if fused is not None and fused.chunk_scan is not None:
        y, final = fused.chunk_scan(x, dt, A, B, C, chunk_size, initial_states=initial, return_final_states=True)
    else:
        y, final = ssd_chunked(x, dt, A, B, C, chunk_size, initial)
    if state is not None:
        state.ssm = final
    return y
