"""A fairseq2 DataPipeline over a shard directory yields the same rows as `ShardDataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset
from speechtok.shards.testing import CODES, FEATS, UNITS, write_dummy_output
from speechtok.trainers.data import BatchingConfig, plan_batches

GROUPS = ("cuts", UNITS.group, CODES.group, FEATS.group)


def _pipeline(*args: Any, **kw: Any) -> Any:
    from speechtok.exports.fairseq2_source import shard_pipeline

    try:
        return shard_pipeline(*args, **kw)
    except InputError as exc:  # pragma: no cover - fairseq2 is in the lock
        pytest.skip(f"fairseq2 cannot be loaded here: {exc}")


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_rows_equal_shard_dataset(tmp_path: Path) -> None:
    write_dummy_output(tmp_path / "out", num_cuts=11, shard_size=4)
    ds = ShardDataset(tmp_path / "out", GROUPS)
    got = list(_pipeline(tmp_path / "out", GROUPS))
    assert len(got) == len(ds) == 11
    for row, ref in zip(got, ds, strict=True):
        _same(row, ref)
    assert not got[0][UNITS.group].flags.writeable  # views of the mapped file, not copies


def test_batches_follow_the_plan_and_resume(tmp_path: Path) -> None:
    write_dummy_output(tmp_path / "out", num_cuts=23, shard_size=5)
    cfg = BatchingConfig(max_tokens=120, max_batch=8, pool_size=16, seed=1)
    ds = ShardDataset(tmp_path / "out", ("cuts", UNITS.group))
    plan = plan_batches(ds.lengths(UNITS.group), cfg, 2)
    pipe = _pipeline(tmp_path / "out", ("cuts", UNITS.group), batching=cfg, epoch=2)
    batches = list(pipe)
    assert [[r["id"] for r in b] for b in batches] == [[ds[int(i)]["id"] for i in b] for b in plan]
    pipe.reset()
    it = iter(pipe)
    next(it), next(it)
    state = pipe.state_dict()
    again = _pipeline(tmp_path / "out", ("cuts", UNITS.group), batching=cfg, epoch=2)
    again.load_state_dict(state)
    assert [[r["id"] for r in b] for b in again] == [[r["id"] for r in b] for b in batches[2:]]
