"""`IndexWriter`: O(1) commits (entry file only), index.json at flush, in-memory fingerprints;
`_ShardFile.abort` on a full disk."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.shards import index as shard_index
from speechtok.shards import writer as shards_mod
from speechtok.shards.index import IndexWriter, ShardIndex, entry_path
from speechtok.shards.schema import GroupMeta
from speechtok.shards.testing import UNITS
from speechtok.shards.writer import ShardWriter, commit_group_shard


def _rows(s: int) -> list[dict[str, Any]]:
    return [{"id": f"c{s}-{i}", "units": np.arange(s + i + 1)} for i in range(3)]


def _count_index_json_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    written: list[str] = []
    real = shard_index.write_json_atomic

    def spy(path: Path, data: Any) -> None:
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(shard_index, "write_json_atomic", spy)
    return written


def test_commits_write_entry_files_only_and_flush_matches_eager(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for s in range(6):  # reference: the eager standalone path (index.json on every commit)
        commit_group_shard(tmp_path / "eager", s, UNITS, _rows(s))
    written = _count_index_json_writes(monkeypatch)
    out = tmp_path / "lazy"
    index = IndexWriter(out)
    for s in (3, 0, 5, 1, 4, 2):  # arrival order of a pool
        commit_group_shard(out, s, UNITS, _rows(s), index=index)
    assert written == [f"units.km50.{s:05d}.json" for s in (3, 0, 5, 1, 4, 2)]  # O(1) each
    assert not (out / "index.json").exists()
    assert ShardIndex.load(out).committed_shards("units.km50") == list(range(6))  # readers merge
    assert index.flush() is True and written[-1] == "index.json"
    assert (out / "index.json").read_bytes() == (tmp_path / "eager" / "index.json").read_bytes()
    assert index.flush() is False and index.flush(force=True) is False  # nothing new, unchanged
    assert len(written) == 7


def test_fingerprint_checked_in_memory_and_refused(tmp_path: Path) -> None:
    commit_group_shard(tmp_path, 0, UNITS, _rows(0))
    index = IndexWriter(tmp_path)
    other = GroupMeta(**{**UNITS.__dict__, "fingerprint": "units-fp-2"})
    with pytest.raises(InputError) as err:
        commit_group_shard(tmp_path, 1, other, _rows(1), index=index)
    assert "units-fp-1" in str(err.value) and "units-fp-2" in str(err.value)
    with pytest.raises(InputError):
        ShardWriter(tmp_path, other, index=index)
    assert not entry_path(tmp_path, "units.km50", 1).exists()
    assert index.remove_group("units.km50") == 1
    assert index.fingerprint_of("units.km50") is None
    commit_group_shard(tmp_path, 1, other, _rows(1), index=index)
    index.flush()
    assert ShardIndex.load(tmp_path).fingerprint_of("units.km50") == "units-fp-2"


def test_loaded_index_with_mixed_fingerprints_is_refused(tmp_path: Path) -> None:
    commit_group_shard(tmp_path, 0, UNITS, _rows(0))
    other = GroupMeta(**{**UNITS.__dict__, "fingerprint": "units-fp-2"})
    shard_index.write_json_atomic(entry_path(tmp_path, "units.km50", 1), {
        **ShardIndex.load(tmp_path).entries()[0].to_dict(), "shard": 1,
        "path": "shards/00001.units.km50.arrow",
        "fingerprint": other.fingerprint})  # e.g. another array task with another config
    with pytest.raises(InputError, match="mixes fingerprints"):
        commit_group_shard(tmp_path, 2, UNITS, _rows(2), index=IndexWriter(tmp_path))


def test_index_of_another_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        commit_group_shard(tmp_path / "a", 0, UNITS, _rows(0), index=IndexWriter(tmp_path / "b"))
    assert err.value.field == "index"


def test_shard_writer_flushes_index_json_once_at_finalize(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [r for s in range(4) for r in _rows(s)]
    for s in range(4):
        commit_group_shard(tmp_path / "eager", s, UNITS, rows[3 * s: 3 * s + 3])
    written = _count_index_json_writes(monkeypatch)
    with ShardWriter(tmp_path / "w", UNITS, max_rows=3) as w:
        for r in rows:
            w.write(r)
    assert written.count("index.json") == 1 and len(written) == 5
    assert (tmp_path / "w" / "index.json").read_bytes() == \
        (tmp_path / "eager" / "index.json").read_bytes()


def test_abort_removes_tmp_file_when_closing_fails_on_a_full_disk(tmp_path: Path) -> None:
    schema = shards_mod.schema_for(UNITS)
    f = shards_mod._ShardFile(tmp_path, 0, UNITS, schema, None)
    assert f.tmp.exists()

    class FullDisk:
        def __init__(self, real: Any) -> None:
            self.real = real

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.real.close()
            raise OSError(errno.ENOSPC, "No space left on device")

        def fileno(self) -> int:
            return int(self.real.fileno())

    real = f.sink._f
    f.sink._f = FullDisk(real)  # type: ignore[assignment]
    f.abort()
    assert not f.tmp.exists() and real.closed
    assert list(tmp_path.glob("shards/*")) == []


def test_forget_uncommits_for_good(tmp_path: Path) -> None:
    """A forgotten shard stays forgotten after a reload and a flush (its entry also leaves index.json)."""
    index = IndexWriter(tmp_path)
    for s in range(3):
        commit_group_shard(tmp_path, s, UNITS, _rows(s), index=index)
    index.flush()
    index.forget(UNITS.group, 1)
    assert not entry_path(tmp_path, UNITS.group, 1).exists()
    assert index.index.entry(UNITS.group, 1) is None
    assert ShardIndex.load(tmp_path).entry(UNITS.group, 1) is None  # not back from index.json
    index.flush(force=True)
    assert ShardIndex.load(tmp_path).committed_shards(UNITS.group) == [0, 2]
    fresh = IndexWriter(tmp_path)
    assert fresh.index.entry(UNITS.group, 1) is None
    index.forget(UNITS.group, 1)  # forgetting twice is harmless
    for s in (0, 2):
        index.forget(UNITS.group, s)
    assert index.fingerprint_of(UNITS.group) is None  # the last entry took its fingerprint along
    assert ShardIndex.load(tmp_path).entries(UNITS.group) == []
