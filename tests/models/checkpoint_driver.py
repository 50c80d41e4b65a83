"""Driver for the checkpoint crash test: a tiny deterministic training run in its own process.

    python tests/models/checkpoint_driver.py RUN_DIR

Run with ``SPEECHTOK_FAULT=<checkpoint fault point>:N`` it is SIGKILLed inside a checkpoint save;
run again without it, it resumes. Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechtok.trainers.data import BatchingConfig, BatchLoader, pad_2d
from speechtok.trainers.loop import LoopConfig, train

STEPS = 30
CHECKPOINT_EVERY = 4


def _data() -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    rng = np.random.default_rng(0)
    items = []
    for _ in range(80):
        n = int(rng.integers(3, 16))
        y = int(rng.integers(0, 3))
        items.append((rng.normal(size=(n, 6)).astype(np.float32) + y, y))
    return items, np.array([len(x) for x, _ in items])


def _collate(items: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, n = pad_2d([x for x, _ in items])
    return x, n, torch.tensor([y for _, y in items])


def _loss(model: nn.Module, batch: Any) -> torch.Tensor:
    x, n, y = batch
    mask = (torch.arange(x.shape[1])[None] < n[:, None]).float().unsqueeze(-1)
    return nn.functional.cross_entropy(model((x * mask).sum(1) / n[:, None]), y)


def main(run_dir: str) -> None:
    torch.set_num_threads(1)
    items, lengths = _data()
    loader = BatchLoader(items, lengths, _collate, BatchingConfig(max_tokens=100, seed=3))
    cfg = LoopConfig(max_steps=STEPS, lr=3e-3, warmup_steps=3, log_every=1, checkpoint_every=CHECKPOINT_EVERY,
                     keep_checkpoints=2, seed=7, device="cpu")
    torch.manual_seed(0)  # the same init in every process (a resumed run overwrites it anyway)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.2), nn.Linear(16, 3))
    train(model, _loss, loader, cfg, Path(run_dir))


if __name__ == "__main__":
    main(sys.argv[1])
