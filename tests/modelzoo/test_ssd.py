"""Chunked SSD against the literal float64 recurrence."""

import pytest
import torch

from modelzoo.ssd import ssd_chunked, ssd_ref

pytestmark = pytest.mark.usefixtures("single_thread")


def _inputs(length: int, batch=2, heads=6, head_dim=4, groups=3, state=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64, generator=g)
    x = torch.randn(batch, length, heads, head_dim, **f64)
    dt = torch.rand(batch, length, heads, **f64) * 0.5 + 0.01
    A = -torch.rand(heads, **f64) * 4 - 0.1
    B = torch.randn(batch, length, groups, state, **f64)
    C = torch.randn(batch, length, groups, state, **f64)
    initial = torch.randn(batch, heads, head_dim, state, **f64)
    return x, dt, A, B, C, initial


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 16, 64])
@pytest.mark.parametrize("length", [1, 13, 32, 45])
def test_chunked_equals_recurrence(chunk_size, length):
    x, dt, A, B, C, initial = _inputs(length)
    for init in (None, initial):
        y_ref, final_ref = ssd_ref(x, dt, A, B, C, init)
        y, final = ssd_chunked(x, dt, A, B, C, chunk_size, init)
        assert _rel(y, y_ref) < 1e-12
        assert _rel(final, final_ref) < 1e-12


def test_recurrence_reference_matches_closed_form_for_one_head():
    # y_t = sum_{s<=t} C_t.B_s * exp(A * sum_{s<r<=t} dt_r) * dt_s * x_s: the definition, written without a state.
    x, dt, A, B, C, _ = _inputs(9, batch=1, heads=1, head_dim=1, groups=1, state=3)
    y_ref, _ = ssd_ref(x, dt, A, B, C)
    for t in range(9):
        total = sum(
            (C[0, t, 0] @ B[0, s, 0]) * torch.exp(A[0] * dt[0, s + 1 : t + 1, 0].sum()) * dt[0, s, 0] * x[0, s, 0, 0]
            for s in range(t + 1)
        )
        assert abs(total - y_ref[0, t, 0, 0]) < 1e-12


def test_chunked_is_causal():
    x, dt, A, B, C, _ = _inputs(40)
    y, _ = ssd_chunked(x, dt, A, B, C, 8)
    x2, B2 = x.clone(), B.clone()
    x2[:, 21:] += 1.0
    B2[:, 21:] *= -3.0
    y2, _ = ssd_chunked(x2, dt, A, B2, C, 8)
    assert torch.equal(y[:, :21], y2[:, :21])
    assert not torch.allclose(y[:, 21:], y2[:, 21:])


def test_split_sequence_with_carried_state_equals_whole():
    x, dt, A, B, C, _ = _inputs(30)
    whole, final = ssd_chunked(x, dt, A, B, C, 8)
    first, mid = ssd_chunked(x[:, :11], dt[:, :11], A, B[:, :11], C[:, :11], 8)
    second, end = ssd_chunked(x[:, 11:], dt[:, 11:], A, B[:, 11:], C[:, 11:], 8, mid)
    assert _rel(torch.cat([first, second], 1), whole) < 1e-12 and _rel(end, final) < 1e-12


def test_gradients_match_reference():
    x, dt, A, B, C, _ = _inputs(19, batch=1)
    inputs = [t.clone().requires_grad_() for t in (x, dt, A, B, C)]
    ssd_chunked(*inputs, 8)[0].square().sum().backward()
    chunked_grads = [t.grad for t in inputs]
    inputs = [t.clone().requires_grad_() for t in (x, dt, A, B, C)]
    ssd_ref(*inputs)[0].square().sum().backward()
    for ours, ref in zip(chunked_grads, [t.grad for t in inputs]):
        assert _rel(ours, ref) < 1e-10
