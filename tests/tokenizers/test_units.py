"""Unit assignment in batches, run-length dedup with durations, unit BPE."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource
from speechtok.tokenizers.units import MAX_DURATION, UnitBPE, dedup, encode_units, expand


def test_dedup_example() -> None:
    u, d = dedup(np.array([3, 3, 3, 1, 1, 7, 3, 3], dtype=np.uint16))
    assert u.tolist() == [3, 1, 7, 3] and d.tolist() == [3, 2, 1, 2]
    assert u.dtype == np.uint16 and d.dtype == np.uint16
    u0, d0 = dedup(np.zeros(0, np.uint16))
    assert u0.size == 0 and d0.size == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=300))
def test_dedup_roundtrip_and_no_adjacent_repeats(values: list[int]) -> None:
    units = np.array(values, dtype=np.uint16)
    u, d = dedup(units)
    assert np.array_equal(expand(u, d), units)
    assert not np.any(u[1:] == u[:-1])
    assert int(d.sum()) == len(units) and (d >= 1).all()


def test_long_runs_are_split_to_fit_uint16() -> None:
    units = np.concatenate([np.full(2 * MAX_DURATION + 5, 4), np.full(3, 2)]).astype(np.uint16)
    u, d = dedup(units)
    assert u.tolist() == [4, 4, 4, 2] and d.tolist() == [MAX_DURATION, MAX_DURATION, 5, 3]
    assert np.array_equal(expand(u, d), units)


@pytest.fixture(scope="module")
def model_and_cuts():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((12, 8)).astype(np.float32) * 3
    cuts = []
    for _ in range(40):
        lab = np.repeat(rng.integers(0, 12, 20), rng.integers(1, 6, 20))  # runs, like speech
        cuts.append((means[lab] + 0.3 * rng.standard_normal((len(lab), 8))).astype(np.float16))
    model = fit_kmeans(ArrayFrameSource(cuts), KMeansConfig(k=12, iterations=8, frame_budget=10_000))
    return model, cuts


def test_batched_equals_one_by_one(model_and_cuts) -> None:
    model, cuts = model_and_cuts
    batched = encode_units(model, cuts, batch_frames=250)
    alone = [model.assign(c) for c in cuts]
    assert len(batched) == len(cuts)
    for b, a in zip(batched, alone, strict=True):
        assert np.array_equal(b.units, a) and b.durations is None
    dd = encode_units(model, cuts, deduplicate=True, batch_frames=10**6)
    for b, a in zip(dd, alone, strict=True):
        assert b.durations is not None and np.array_equal(expand(b.units, b.durations), a)
    # runs in the features give a unit rate well below the frame rate after dedup
    assert sum(len(b.units) for b in dd) < 0.6 * sum(len(a) for a in alone)


def test_encode_rejects_wrong_dim(model_and_cuts) -> None:
    model, _ = model_and_cuts
    with pytest.raises(InputError, match="cut 1"):
        encode_units(model, [np.zeros((3, 8), np.float32), np.zeros((3, 5), np.float32)])


def test_unit_bpe_roundtrip_compresses_and_never_unk(tmp_path) -> None:
    rng = np.random.default_rng(0)
    motifs = [rng.integers(0, 30, 4) for _ in range(6)]
    seqs = [np.concatenate([motifs[i] for i in rng.integers(0, 6, 25)]).astype(np.uint16) for _ in range(200)]
    bpe = UnitBPE.train(seqs, k=50, vocab_size=120)  # units 30..49 never occur in training
    ids = bpe.encode(seqs[0])
    assert len(ids) < len(seqs[0]) / 2  # frequent 4-grams became single tokens
    assert np.array_equal(bpe.decode(ids), seqs[0])
    unseen = np.array([49, 31, 49, 0], dtype=np.uint16)
    assert np.array_equal(bpe.decode(bpe.encode(unseen)), unseen)
    bpe.save(tmp_path)
    again = UnitBPE.load(tmp_path)
    assert np.array_equal(again.encode(seqs[1]), bpe.encode(seqs[1]))
    with pytest.raises(InputError, match="out of range"):
        bpe.encode(np.array([50], dtype=np.uint16))
    with pytest.raises(InputError):
        bpe.decode(np.array([bpe.vocab_size + 3]))
    with pytest.raises(ConfigError, match="vocab_size"):
        UnitBPE.train(seqs, k=50, vocab_size=40)
