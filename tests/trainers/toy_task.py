"""A toy classification task for the training-loop tests (`test_loop.py`, `checkpoint_driver.py`):
variable-length (T, 6) float32 sequences whose class (0..2) shifts every value, and a net that
classifies their masked mean. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from speechtok.trainers.data import pad_2d


def toy_items(count: int, max_len: int) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    """`count` (float32 (T, 6) sequence, class) items with 3 <= T < `max_len`, and their int64 (count,) lengths."""
    rng = np.random.default_rng(0)
    items = []
    for _ in range(count):
        n = int(rng.integers(3, max_len))
        y = int(rng.integers(0, 3))
        items.append((rng.normal(size=(n, 6)).astype(np.float32) + y, y))
    return items, np.array([len(x) for x, _ in items])


def toy_collate(items: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x float32 (B, T, 6) padded, n int64 (B,) lengths, y int64 (B,) classes)."""
    x, n = pad_2d([x for x, _ in items])
    return x, n, torch.tensor([y for _, y in items])


class ToyNet(nn.Module):
    """Masked mean over time, then Linear(6, hidden), GELU, Dropout, Linear(hidden, 3)."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1])[None] < n[:, None]).float().unsqueeze(-1)
        return self.net((x * mask).sum(1) / n[:, None])


def toy_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of `model` (a `ToyNet`) on a `toy_collate` batch."""
    x, n, y = batch
    return nn.functional.cross_entropy(model(x, n), y)
