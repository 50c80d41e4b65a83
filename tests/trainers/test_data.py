"""BatchLoader: token budget, bucketing, determinism, exact resume from a saved position."""

from __future__ import annotations

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.trainers.data import BatchingConfig, BatchLoader, pad_1d, plan_batches

LENGTHS = np.random.default_rng(0).integers(1, 100, size=300)


def test_plan_respects_budget_and_covers_every_item_once() -> None:
    cfg = BatchingConfig(max_tokens=400, max_batch=16, pool_size=64, seed=3)
    batches = plan_batches(LENGTHS, cfg, epoch=0)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(LENGTHS.size))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or LENGTHS[b].max() * len(b) <= 400
    # bucketing: padding waste is far below the unsorted one
    waste = sum(LENGTHS[b].max() * len(b) - LENGTHS[b].sum() for b in batches)
    rand = np.random.default_rng(0).permutation(LENGTHS.size)
    rb = [rand[i : i + 8] for i in range(0, rand.size, 8)]
    rand_waste = sum(LENGTHS[b].max() * len(b) - LENGTHS[b].sum() for b in rb)
    assert waste < 0.5 * rand_waste
    # deterministic per (seed, epoch); different across epochs
    again = plan_batches(LENGTHS, cfg, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = plan_batches(LENGTHS, cfg, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=False))


def test_max_length_skips_and_config_errors() -> None:
    cfg = BatchingConfig(max_tokens=400, max_length=50)
    flat = np.concatenate(plan_batches(LENGTHS, cfg, 0))
    assert (LENGTHS[flat] <= 50).all() and flat.size == (LENGTHS <= 50).sum()
    with pytest.raises(ConfigError, match="max_tokens"):
        BatchLoader(list(range(3)), np.ones(3), list, BatchingConfig(max_tokens=0))
    with pytest.raises(InputError, match="lengths"):
        BatchLoader(list(range(3)), np.ones(4), list, BatchingConfig())


def _collate(items: list[np.ndarray]) -> list[int]:
    return [int(x[0]) for x in items]


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_continues_exactly(workers: int) -> None:
    items = [np.array([i] * int(n)) for i, n in enumerate(LENGTHS)]
    cfg = BatchingConfig(max_tokens=500, max_batch=12, pool_size=50, seed=1, num_workers=workers)
    ref = BatchLoader(items, LENGTHS, _collate, cfg)
    n_epoch = ref.epoch_batches()
    stream = [next(ref) for _ in range(n_epoch + 7)]  # crosses an epoch boundary
    part = BatchLoader(items, LENGTHS, _collate, cfg)
    head = [next(part) for _ in range(n_epoch - 3)]
    state = part.state_dict()
    resumed = BatchLoader(items, LENGTHS, _collate, cfg)
    resumed.load_state_dict(state)
    tail = [next(resumed) for _ in range(10)]
    assert head + tail == stream
    assert resumed.state_dict() == {"epoch": 1, "batch": 7}


def test_pad_1d() -> None:
    ids, n = pad_1d([np.array([1, 2, 3]), np.array([4])], pad=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and n.tolist() == [3, 1]
