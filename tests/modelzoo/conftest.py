"""Shared fixtures of the modelzoo tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Run a module's tiny-model tests on one intra-op thread: for tensors this small, thread hand-offs cost
    more than they save, and on a busy 2-core machine a descheduled worker thread stalls every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
