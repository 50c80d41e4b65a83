"""Uniform, deterministic, memory-bounded frame sampling."""

from __future__ import annotations

import numpy as np
import pytest

from speechtok.errors import InputError
from speechtok.tokenizers.kmeans_sampling import (
    ArrayFrameSource,
    NpyFrameSource,
    choose_indices,
    sample_frames,
)


def indexed_cuts(n: int, d: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Cuts whose frames carry their global index in column 0."""
    rng = np.random.default_rng(seed)
    out, s = [], 0
    while s < n:
        m = min(int(rng.integers(1, 300)), n - s)
        a = np.zeros((m, d), np.float32)
        a[:, 0] = np.arange(s, s + m)
        out.append(a)
        s += m
    return out


def test_sample_is_uniform_and_deterministic() -> None:
    n, budget = 50_000, 5_000
    src = ArrayFrameSource(indexed_cuts(n))
    s1 = sample_frames(src, budget, seed=1)
    s2 = sample_frames(src, budget, seed=1)
    s3 = sample_frames(src, budget, seed=2)
    assert s1.frames.shape == (budget, 4) and s1.frames.dtype == np.float32
    assert s1.total_frames == n and s1.sha256 == s2.sha256 != s3.sha256
    idx = s1.frames[:, 0].astype(np.int64)
    assert len(np.unique(idx)) == budget  # without replacement
    counts, _ = np.histogram(idx, bins=10, range=(0, n))
    # each tenth of the corpus gets ~500 frames (binomial sd ~21)
    assert counts.min() > 400 and counts.max() < 600


def test_budget_larger_than_corpus_takes_everything() -> None:
    cuts = indexed_cuts(1000)
    s = sample_frames(ArrayFrameSource(cuts), 10_000, seed=0)
    assert np.array_equal(s.frames, np.concatenate(cuts))


def test_choose_indices_memory_is_bounded_by_budget() -> None:
    idx = choose_indices(10**12, 1000, seed=0)  # a corpus far too large to enumerate
    assert idx.shape == (1000,) and np.all(np.diff(idx) > 0) and idx[-1] < 10**12


def test_npy_source_matches_in_memory(tmp_path) -> None:
    cuts = indexed_cuts(20_000, d=8)
    paths, parts = [], []
    for i, part in enumerate(np.array_split(np.concatenate(cuts), 3)):
        p = tmp_path / f"{i}.npy"
        parts.append(part.astype(np.float16) if i == 1 else part)
        np.save(p, parts[-1])
        paths.append(p)
    src = NpyFrameSource(paths, chunk_frames=999)
    assert src.total_frames() == 20_000
    a = sample_frames(src, 3000, seed=5)
    b = sample_frames(ArrayFrameSource(parts), 3000, seed=5)
    assert np.array_equal(a.frames, b.frames)


def test_source_errors() -> None:
    with pytest.raises(InputError, match="no frames"):
        sample_frames(ArrayFrameSource([np.zeros((0, 3), np.float32)]), 10, 0)
    with pytest.raises(InputError, match="disagree on D"):
        sample_frames(ArrayFrameSource([np.zeros((5, 3), np.float32), np.zeros((5, 4), np.float32)]), 10, 0)
    bad = np.zeros((5, 3), np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        sample_frames(ArrayFrameSource([bad]), 10, 0)


def test_shard_source_reads_a_features_group(tmp_path) -> None:
    from speechtok.shards import testing as shard_testing

    rows = shard_testing.write_dummy_output(tmp_path, num_cuts=9, shard_size=4)
    from speechtok.tokenizers.kmeans_sampling import ShardFrameSource

    src = ShardFrameSource(tmp_path, "feats.d8")
    feats = [r["feats"] for r in rows["feats.d8"]]
    assert src.total_frames() == sum(len(f) for f in feats)
    assert src.fingerprint() == "feats-fp-1"
    a = sample_frames(src, 200, seed=0)
    b = sample_frames(ArrayFrameSource(feats), 200, seed=0)
    assert np.array_equal(a.frames, b.frames)
