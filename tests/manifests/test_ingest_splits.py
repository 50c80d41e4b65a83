"""Deterministic splits and partitions (hypothesis for the invariants)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lhotse import CutSet, MonoCut, SupervisionSegment

from speechtok.errors import ConfigError
from speechtok.manifests.splits import partition, shard_of, split_key, split_of, write_splits

ids = st.lists(st.text(min_size=1, max_size=12), max_size=60)


@given(ids, st.integers(min_value=1, max_value=17))
@settings(max_examples=60, deadline=None)
def test_partition_is_an_ordered_balanced_cover(cut_ids: list[str], n: int) -> None:
    parts = partition(cut_ids, n)
    assert len(parts) == n
    assert [x for p in parts for x in p] == cut_ids
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert parts == partition(iter(cut_ids), n)


@given(st.text(min_size=1, max_size=20), st.integers(min_value=0, max_value=3))
@settings(max_examples=60, deadline=None)
def test_split_and_shard_depend_only_on_key_and_seed(key: str, seed: int) -> None:
    assert split_of(key, seed=seed) == split_of(key, seed=seed) in ("train", "dev", "test")
    assert 0 <= shard_of(key, 7, seed) < 7
    assert split_of(key, (1.0, 0.0, 0.0), seed) == "train"
    assert split_of(key, (0.0, 0.0, 1.0), seed) == "test"


def test_split_ratios_are_respected_and_stable() -> None:
    keys = [f"spk{i}" for i in range(5000)]
    counts = Counter(split_of(k) for k in keys)
    assert abs(counts["train"] / 5000 - 0.8) < 0.03
    assert abs(counts["dev"] / 5000 - 0.1) < 0.02
    # A pinned value: the hash must not change between versions (manifests depend on it).
    assert [split_of(f"spk{i}") for i in range(12)] == ["dev"] + ["train"] * 10 + ["dev"]
    assert [shard_of(f"spk{i}", 4) for i in range(8)] == [0, 0, 3, 0, 2, 3, 2, 1]
    # Other seeds give another assignment.
    assert [split_of(k, seed=1) for k in keys[:200]] != [split_of(k) for k in keys[:200]]


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="ratios"):
        split_of("a", (0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="num_shards"):
        partition(["a"], 0)


def _cut(i: int, speaker: str | None) -> MonoCut:
    sup = SupervisionSegment(id=f"c{i}", recording_id=f"r{i}", start=0, duration=1, speaker=speaker)
    return MonoCut(id=f"c{i}", start=0, duration=1, channel=0, supervisions=[sup])


def test_write_splits_keeps_speakers_together(tmp_path: Path) -> None:
    cuts = CutSet.from_cuts([_cut(i, f"s{i % 23}" if i % 5 else None) for i in range(300)])
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    paths = write_splits(tmp_path / "cuts.jsonl.gz", tmp_path / "splits")
    got = {s: list(CutSet.from_file(p)) for s, p in paths.items()}
    assert sum(len(v) for v in got.values()) == 300
    owner: dict[str, str] = {}
    for s, cs in got.items():
        for c in cs:
            k = split_key(c)
            assert owner.setdefault(k, s) == s  # one split per speaker / recording
            assert split_of(k) == s
    assert split_key(_cut(0, None)) == "r0" and split_key(_cut(1, "bob")) == "bob"
