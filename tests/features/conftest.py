"""Feature tests run torch on one thread: on a shared, loaded machine two OpenMP threads spinning
against other processes made the tiny-model tests ~50x slower (measured)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
