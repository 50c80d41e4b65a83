"""Driver for the checkpoint crash test (`tests/models/test_checkpoint_durable.py`): a tiny
deterministic training run in its own process.

    python tests/trainers/checkpoint_driver.py RUN_DIR

Run with ``SPEECHTOK_FAULT=<checkpoint fault point>:N`` it is SIGKILLed inside a checkpoint save;
run again without it, it resumes. Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from toy_task import ToyNet, toy_collate, toy_items, toy_loss

from speechtok.trainers.data import BatchingConfig, BatchLoader
from speechtok.trainers.loop import LoopConfig, train

STEPS = 30
CHECKPOINT_EVERY = 4


def main(run_dir: str) -> None:
    torch.set_num_threads(1)
    items, lengths = toy_items(80, 16)
    loader = BatchLoader(items, lengths, toy_collate, BatchingConfig(max_tokens=100, seed=3))
    cfg = LoopConfig(max_steps=STEPS, lr=3e-3, warmup_steps=3, log_every=1, checkpoint_every=CHECKPOINT_EVERY,
                     keep_checkpoints=2, seed=7, device="cpu")
    torch.manual_seed(0)  # the same init in every process (a resumed run overwrites it anyway)
    train(ToyNet(16, 0.2), toy_loss, loader, cfg, Path(run_dir))


if __name__ == "__main__":
    main(sys.argv[1])
