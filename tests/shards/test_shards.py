"""Shard writer, schema and index: typed columns, commit protocol, determinism, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.shards import writer as shards_mod
from speechtok.shards.index import ShardIndex, entry_path, shard_path
from speechtok.shards.schema import META_KEY, GroupMeta, schema_for
from speechtok.shards.testing import CODES, CUTS, FEATS, UNITS, write_dummy_output
from speechtok.shards.writer import ShardWriter, commit_group_shard, delete_group


def test_schema_types_and_metadata() -> None:
    s = schema_for(CODES)
    assert s.field("codes").type == pa.list_(pa.list_(pa.uint16(), 4))
    assert schema_for(UNITS).field("units").type == pa.list_(pa.uint16())
    assert schema_for(FEATS).field("feats").type == pa.list_(pa.list_(pa.float16(), 8))
    assert schema_for(CUTS).names[:4] == ["id", "recording_id", "start", "duration"]
    meta = json.loads(s.metadata[META_KEY])
    assert meta["schema_version"] == 1 and meta["num_codebooks"] == 4
    assert meta["fingerprint"] == CODES.fingerprint and meta["config"] == {"bandwidth": 1.5}
    assert GroupMeta.from_json(s.metadata[META_KEY], source="x") == CODES


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"group": "units.a", "kind": "codes", "num_codebooks": 2}, "group"),
        ({"group": "codes.a", "kind": "codes"}, "num_codebooks"),
        ({"group": "feats.a", "kind": "feats", "dim": 4, "dtype": "int8"}, "dtype"),
        ({"group": "units.a", "kind": "units", "vocab_size": 70000}, "vocab_size"),
        ({"group": "units/a", "kind": "units"}, "group"),
        ({"group": "units.a", "kind": "units", "config": {"x": object()}}, "config"),
    ],
)
def test_group_meta_validation(kw: dict, field: str) -> None:
    meta = GroupMeta(stage="s", stage_version="1", fingerprint="f", **kw)
    with pytest.raises(ConfigError) as err:
        meta.validate()
    assert err.value.field == field


def test_commit_roundtrip_and_index(tmp_path: Path) -> None:
    rows = [{"id": f"c{i}", "codes": np.full((i + 1, 4), i, np.int32)} for i in range(5)]
    e = commit_group_shard(tmp_path, 3, CODES, rows)
    path = shard_path(tmp_path, 3, "codes.q4")
    assert path.exists() and e.path == "shards/00003.codes.q4.arrow"
    assert e.rows == 5 and e.bytes == path.stat().st_size and e.status == "committed"
    assert not list(path.parent.glob("*.tmp*"))
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    assert table.column("codes").to_pylist()[2] == [[2] * 4] * 3
    idx = ShardIndex.load(tmp_path)
    assert idx.committed("codes.q4", 3) == e and idx.fingerprint_of("codes.q4") == CODES.fingerprint
    merged = json.loads((tmp_path / "index.json").read_text())
    assert merged["shards"][0]["sha256"] == e.sha256
    assert merged["groups"]["codes.q4"]["rows"] == 5
    assert entry_path(tmp_path, "codes.q4", 3).exists()


def test_byte_identical_output(tmp_path: Path) -> None:
    write_dummy_output(tmp_path / "a", num_cuts=9)
    write_dummy_output(tmp_path / "b", num_cuts=9)
    fa = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    fb = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert fa == fb and len(fa) > 10
    for rel in fa:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_writer_rolls_and_matches_commit(tmp_path: Path) -> None:
    rows = [{"id": f"c{i}", "units": np.arange(i % 7, dtype=np.uint16)} for i in range(23)]
    with ShardWriter(tmp_path / "w", UNITS, max_rows=10, start_shard=2) as w:
        for r in rows:
            w.write(r)
    assert w.finalize()[0] == 23
    assert [(e.shard, e.rows) for e in w.entries] == [(2, 10), (3, 10), (4, 3)]
    # the same rows through commit_group_shard give the same bytes
    e = commit_group_shard(tmp_path / "c", 3, UNITS, rows[10:20])
    assert e.sha256 == w.entries[1].sha256


def test_writer_rolls_by_bytes(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, FEATS, max_bytes=5000) as w:
        for i in range(10):
            w.write({"id": f"c{i}", "feats": np.zeros((200, 8), np.float16)})  # 3200 B each
    assert [e.rows for e in w.entries] == [2, 2, 2, 2, 2]


def test_writer_abort_leaves_no_tmp(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, UNITS, max_rows=3) as w:
        for i in range(5):
            w.write({"id": f"c{i}", "units": np.arange(3)})
        raise RuntimeError("boom")
    assert [e.shard for e in w.entries] == [0]
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["00000.units.km50.arrow"]


def test_refuses_to_mix_fingerprints(tmp_path: Path) -> None:
    commit_group_shard(tmp_path, 0, UNITS, [{"id": "a", "units": np.arange(3)}])
    other = GroupMeta(**{**UNITS.__dict__, "fingerprint": "units-fp-2"})
    with pytest.raises(InputError) as err:
        commit_group_shard(tmp_path, 1, other, [{"id": "b", "units": np.arange(3)}])
    msg = str(err.value)
    assert "units.km50" in msg and "units-fp-1" in msg and "units-fp-2" in msg and "--overwrite-stage" in msg
    with pytest.raises(InputError):
        ShardWriter(tmp_path, other)
    assert delete_group(tmp_path, "units.km50") == 1
    commit_group_shard(tmp_path, 1, other, [{"id": "b", "units": np.arange(3)}])
    assert ShardIndex.load(tmp_path).fingerprint_of("units.km50") == "units-fp-2"


def test_rerun_of_committed_shard_is_identical(tmp_path: Path) -> None:
    rows = [{"id": "a", "units": np.arange(3)}]
    e1 = commit_group_shard(tmp_path, 0, UNITS, rows)
    e2 = commit_group_shard(tmp_path, 0, UNITS, rows)
    assert e1 == e2 and len(ShardIndex.load(tmp_path).entries()) == 1


@pytest.mark.parametrize(
    ("meta", "row", "needle"),
    [
        (UNITS, {"id": "a", "units": np.array([50])}, "out of range for vocab_size 50"),
        (UNITS, {"id": "a", "units": np.array([-1])}, "[0, 65535]"),
        (UNITS, {"id": "a", "units": np.array([1.5])}, "integer"),
        (UNITS, {"id": "a", "units": [1], "durations": [1, 2]}, "same length"),
        (CODES, {"id": "a", "codes": np.zeros((3, 5), np.uint16)}, "(T, 4)"),
        (FEATS, {"id": "a", "feats": np.zeros((3, 8), np.int16)}, "floating point"),
        (UNITS, {"id": "a", "unit": [1]}, "unknown columns"),
        (UNITS, {"units": [1]}, "non-empty str 'id'"),
        (CUTS, {"id": "a", "start": 0.0}, "duration"),
    ],
)
def test_bad_rows_raise_input_error(tmp_path: Path, meta: GroupMeta, row: dict, needle: str) -> None:
    with pytest.raises(InputError) as err:
        commit_group_shard(tmp_path, 0, meta, [row])
    assert needle in str(err.value)
    assert not (tmp_path / "shards").exists() or not list((tmp_path / "shards").iterdir())


def test_crash_between_index_and_rename_is_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(shards_mod, "_publish", crash)
    with pytest.raises(OSError):
        commit_group_shard(tmp_path, 0, UNITS, [{"id": "a", "units": np.arange(3)}])
    monkeypatch.undo()
    idx = ShardIndex.load(tmp_path)
    assert idx.entry("units.km50", 0) is not None  # recorded ...
    assert idx.committed("units.km50", 0) is None  # ... but its file is missing: in flight
    commit_group_shard(tmp_path, 0, UNITS, [{"id": "a", "units": np.arange(3)}])
    assert ShardIndex.load(tmp_path).committed("units.km50", 0) is not None


def test_concurrent_writers_of_disjoint_shards_keep_all_entries(tmp_path: Path) -> None:
    # Two "jobs" interleave; entries live in index.d so neither overwrites the other.
    from concurrent.futures import ThreadPoolExecutor

    def job(lo: int) -> None:
        for s in range(lo, lo + 5):
            commit_group_shard(tmp_path, s, UNITS, [{"id": f"c{s}", "units": np.arange(2)}])

    with ThreadPoolExecutor(2) as ex:
        list(ex.map(job, [0, 5]))
    idx = ShardIndex.load(tmp_path)
    assert idx.committed_shards("units.km50") == list(range(10))
    merged = json.loads((tmp_path / "index.json").read_text())
    assert len(merged["shards"]) == 10


def test_big_rows_are_single_batches_and_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechtok.shards.reader import ShardDataset

    monkeypatch.setattr(shards_mod, "BIG_ROW", 1000)
    rng = np.random.default_rng(0)
    rows = [{"id": f"c{i}", "feats": rng.standard_normal((5 if i % 3 else 200, 8)).astype(np.float16)}
            for i in range(10)]  # 80 B rows batched together, 3200 B rows alone
    e = commit_group_shard(tmp_path / "c", 0, FEATS, rows)
    with ShardWriter(tmp_path / "w", FEATS, max_rows=100) as w:
        for r in rows:
            w.write(r)
    assert w.entries[0].sha256 == e.sha256
    reader = pa.ipc.open_file(pa.memory_map(str(tmp_path / "c" / e.path)))
    assert [reader.get_batch(b).num_rows for b in range(reader.num_record_batches)] == [
        1, 2, 1, 2, 1, 2, 1]
    ds = ShardDataset(tmp_path / "c", (FEATS.group,))
    for i, r in enumerate(rows):
        np.testing.assert_array_equal(ds[i][FEATS.group], r["feats"])


def _feats_rows(n: int) -> list[dict]:
    rng = np.random.default_rng(1)
    return [{"id": f"c{i}", "feats": rng.standard_normal((600, 8)).astype(np.float16)} for i in range(n)]


def test_early_writeback_gives_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = shards_mod.os.fdatasync
    monkeypatch.setattr(shards_mod.os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
    monkeypatch.setattr(shards_mod, "BIG_ROW", 1000)  # one write per row
    monkeypatch.setattr(shards_mod, "WRITEBACK_EVERY", 0)  # off
    off = commit_group_shard(tmp_path / "off", 0, FEATS, _feats_rows(40))
    assert synced == []
    monkeypatch.setattr(shards_mod, "WRITEBACK_EVERY", 20_000)  # every ~2 rows
    on = commit_group_shard(tmp_path / "on", 0, FEATS, _feats_rows(40))
    assert synced  # a background sync ran while writing
    assert on.sha256 == off.sha256 and on.bytes == off.bytes
    assert (tmp_path / "on" / on.path).read_bytes() == (tmp_path / "off" / off.path).read_bytes()


def test_failed_background_sync_commits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def eio(fd: int) -> None:
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(shards_mod, "WRITEBACK_EVERY", 20_000)
    monkeypatch.setattr(shards_mod, "BIG_ROW", 1000)
    monkeypatch.setattr(shards_mod.os, "fdatasync", eio)
    with pytest.raises(OSError, match="injected"):
        commit_group_shard(tmp_path, 0, FEATS, _feats_rows(40))
    assert list((tmp_path / "shards").iterdir()) == []  # no tmp file, no shard
    assert not (tmp_path / "index.d").exists() or not any((tmp_path / "index.d").rglob("*.json"))
