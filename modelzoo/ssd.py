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
    """Chunked SSD; returns ``(y [b, l, h, p], final_state [b, h, p, n])``.

    Token-major: tensors keep the ``[b, c, L, ...]`` layout of the input (c = chunk, L = position in chunk) so
    that x and y are reshaped, not copied, and the heads r of a group are folded into the matmul dimension of
    every contraction with B or C, which the heads share (r = heads per group, p = head_dim, n = state_size).
    """
    batch, length, heads, head_dim = x.shape
    groups, state_size = B.shape[2], B.shape[3]
    per_group = heads // groups
    pad = (-length) % chunk_size
    if pad:
        # dt = 0 on padded steps makes them the identity on the state, so the final state stays exact.
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    chunks = x.shape[1] // chunk_size
    dtype = x.dtype
    shape = (batch, chunks, chunk_size, groups)

    cum = (dt * A.to(dtype)).view(*shape, per_group).cumsum(2)  # [b, c, L, g, r]
    xdt = (x * dt[..., None]).view(*shape, per_group, head_dim)  # [b, c, L, g, r, p]
    Bc = B.view(*shape, state_size).transpose(2, 3)  # [b, c, g, L, n]
    Cc = C.view(*shape, state_size).transpose(2, 3)

    # 1. within each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(cum_i - cum_j) xdt_j, one L x L matrix per head.
    scores = (Cc @ Bc.transpose(-1, -2)).unsqueeze(3)  # [b, c, g, 1, L, L]
    decay = _segment_decay(cum.permute(0, 1, 3, 4, 2))  # [b, c, g, r, L, L]
    y_diag = (scores * decay) @ xdt.permute(0, 1, 3, 4, 2, 5)  # [b, c, g, r, L, p]

    # 2. state each chunk contributes at its end, sum_j exp(cum_last - cum_j) xdt_j B_j^T: heads fold into rows.
    to_end = torch.exp(cum[:, :, -1:] - cum)  # [b, c, L, g, r]
    weighted = (xdt * to_end[..., None]).flatten(-2).transpose(2, 3)  # [b, c, g, L, r*p]
    chunk_states = weighted.transpose(-1, -2) @ Bc  # [b, c, g, r*p, n]

    # 3. carry states across chunk boundaries: entering chunk k = sum_{z<=k} decay(z -> k) * source_z,
    #    where source_0 is the initial state and source_{z+1} the state chunk z produced.
    chunk_states = chunk_states.view(batch, chunks, groups, per_group, head_dim * state_size)
    if initial_state is None:
        initial = torch.zeros_like(chunk_states[:, :1])
    else:
        initial = initial_state.to(dtype).reshape(batch, 1, groups, per_group, head_dim * state_size)
    sources = torch.cat([initial, chunk_states], dim=1).permute(0, 2, 3, 1, 4)  # [b, g, r, c+1, p*n]
    chunk_cum = F.pad(cum[:, :, -1].permute(0, 2, 3, 1), (1, 0)).cumsum(-1)  # [b, g, r, c+1]
    entering = _segment_decay(chunk_cum) @ sources  # [b, g, r, c+1, p*n]

    # 4. contribution of the entering state to each position, exp(cum_i) * (C_i . state): heads fold into columns.
    into_chunk = entering[:, :, :, :-1].unflatten(-1, (head_dim, state_size))  # [b, g, r, c, p, n]
    into_chunk = into_chunk.permute(0, 3, 1, 5, 2, 4).flatten(-2)  # [b, c, g, n, r*p]
    y_off = (Cc @ into_chunk).unflatten(-1, (per_group, head_dim))  # [b, c, g, L, r, p]
    y_off = y_off * torch.exp(cum).transpose(2, 3)[..., None]

    y = (y_off + y_diag.transpose(3, 4)).transpose(2, 3)  # [b, c, L, g, r, p]
    y = y.reshape(batch, chunks * chunk_size, heads, head_dim)[:, :length]
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
