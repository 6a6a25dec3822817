"""State-space duality (SSD) scan of Mamba-2 in plain PyTorch.

The recurrence, per head h with grouped inputs B, C (heads h share group h // (H / G)):

    state_t = exp(dt_t * A) * state_{t-1} + dt_t * x_t B_t^T        (state: [head_dim, state_size])
    y_t     = state_t C_t

``ssd_chunked`` evaluates it in chunks with batched matmuls: a masked "attention" inside each chunk, plus
the chunk-boundary states carried across chunks through a small decay matrix (no Python loop over time).
``ssd_ref`` is the literal loop over time, kept as the reference the chunked form is tested against.
``ssd_step`` advances one token, for generation.

Shapes: x [b, l, h, p], dt [b, l, h] (already softplus'ed, > 0), A [h] (< 0), B and C [b, l, g, n],
states [b, h, p, n]. Computation happens in the dtype of x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _segment_decay(cum: torch.Tensor) -> torch.Tensor:
    """exp(cum[..., i] - cum[..., j]) for j <= i, else 0: the decay from step j to step i."""
    size = cum.shape[-1]
    causal = torch.ones(size, size, dtype=torch.bool, device=cum.device).tril()
    diff = cum[..., :, None] - cum[..., None, :]
    return torch.exp(diff.masked_fill(~causal, float("-inf")))


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked SSD; returns ``(y [b, l, h, p], final_state [b, h, p, n])``."""
    batch, length, heads, head_dim = x.shape
    groups, state_size = B.shape[2], B.shape[3]
    per_group = heads // groups
    pad = (-length) % chunk_size
    if pad:
        # dt = 0 on padded steps makes them the identity on the state, so the final state stays exact.
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    chunks = x.shape[1] // chunk_size
    dtype = x.dtype

    # Work head-major, [b, g, r, c, L, ...] (r = heads per group, c = chunk, L = position in chunk), so every
    # contraction below is a plain batched matmul; B and C broadcast over the r heads of their group.
    def head_major(t: torch.Tensor, inner: int) -> torch.Tensor:
        return t.reshape(batch, chunks, chunk_size, groups, -1, inner).permute(0, 3, 4, 1, 2, 5)

    log_decay = head_major(dt * A.to(dtype), 1)[..., 0]  # [b, g, r, c, L]
    cum = log_decay.cumsum(-1)
    xdt = head_major(x * dt[..., None], head_dim)  # [b, g, r, c, L, p]
    Bc = head_major(B, state_size)  # [b, g, 1, c, L, n]
    Cc = head_major(C, state_size)

    # 1. within each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(cum_i - cum_j) xdt_j
    scores = Cc @ Bc.transpose(-1, -2)  # [b, g, 1, c, L, L]
    y = (scores * _segment_decay(cum)) @ xdt

    # 2. state each chunk contributes at its end: sum_j exp(cum_last - cum_j) xdt_j B_j^T  -> [b, g, r, c, p, n]
    to_end = torch.exp(cum[..., -1:] - cum)
    chunk_states = (xdt * to_end[..., None]).transpose(-1, -2) @ Bc

    # 3. carry states across chunk boundaries: entering chunk k = sum_{z<=k} decay(z -> k) * source_z,
    #    where source_0 is the initial state and source_{z+1} the state chunk z produced.
    if initial_state is None:
        initial = torch.zeros_like(chunk_states[:, :, :, :1])
    else:
        initial = initial_state.to(dtype).view(batch, groups, per_group, 1, head_dim, state_size)
    sources = torch.cat([initial, chunk_states], dim=3)  # [b, g, r, c+1, p, n]
    chunk_cum = F.pad(cum[..., -1], (1, 0)).cumsum(-1)  # [b, g, r, c+1]
    carry = _segment_decay(chunk_cum)  # [b, g, r, c+1, c+1]
    entering = (carry @ sources.flatten(-2)).view_as(sources)

    # 4. contribution of the entering state to each position: exp(cum_i) * (C_i . state)
    y = y + (Cc @ entering[:, :, :, :-1].transpose(-1, -2)) * torch.exp(cum)[..., None]

    y = y.permute(0, 3, 4, 1, 2, 5).reshape(batch, chunks * chunk_size, heads, head_dim)[:, :length]
    final_state = entering[:, :, :, -1].reshape(batch, heads, head_dim, state_size)
    return y, final_state


def ssd_step(
    state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One recurrent step. x [b, h, p], dt [b, h], B and C [b, g, n]; returns ``(y [b, h, p], new_state)``."""
    per_group = x.shape[1] // B.shape[1]
    B_heads = B.repeat_interleave(per_group, dim=1)
    C_heads = C.repeat_interleave(per_group, dim=1)
    decay = torch.exp(dt * A)[..., None, None]
    new_state = state * decay + (dt[..., None] * x)[..., None] * B_heads[:, :, None, :]
    y = torch.einsum("bhpn,bhn->bhp", new_state, C_heads)
    return y, new_state


def ssd_ref(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence as a loop over time (slow; reference for tests and benchmarks)."""
    batch, length, heads, head_dim = x.shape
    state = x.new_zeros(batch, heads, head_dim, B.shape[-1]) if initial_state is None else initial_state.to(x.dtype)
    outputs = []
    for t in range(length):
        y, state = ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t])
        outputs.append(y)
    return torch.stack(outputs, dim=1), state
