"""speechtok.atomic: whole file or old file, never a mixture; exports refuse non-empty dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok import atomic
from speechtok.errors import InputError


def test_write_json_text_bytes(tmp_path: Path) -> None:
    atomic.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"a": [1, 2], "b": 1}
    atomic.write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic.write_text(p, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(p, "w") as fh:
        fh.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert p.read_text() == "old"
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError):
        atomic.write_json(p, {"x": float("nan")})
    assert p.read_text() == "old"


def test_atomic_dir_refuses_nonempty_unless_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "export"
    with atomic.atomic_dir(dest) as d:
        (d / "one.txt").write_text("1")
        assert not dest.exists()  # nothing visible until the end
    assert (dest / "one.txt").read_text() == "1"
    with pytest.raises(InputError, match="--overwrite"), atomic.atomic_dir(dest) as d:
        pass
    with atomic.atomic_dir(dest, overwrite=True) as d:
        (d / "two.txt").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["two.txt"]  # no stale file of the old export
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_dir_failure_leaves_destination(tmp_path: Path) -> None:
    dest = tmp_path / "export"
    dest.mkdir()
    (dest / "keep.txt").write_text("k")
    with pytest.raises(RuntimeError), atomic.atomic_dir(dest, overwrite=True) as d:
        (d / "partial").write_text("p")
        raise RuntimeError("crash")
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_files_renames_each_file_in_and_keeps_the_others(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    dest.mkdir()
    (dest / "metrics.jsonl").write_text("m")
    (dest / "config.json").write_text("old")
    with atomic.atomic_files(dest) as d:
        (d / "config.json").write_text("new")
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(b"w")
        assert (dest / "config.json").read_text() == "old"  # nothing visible until the end
    assert (dest / "config.json").read_text() == "new"
    assert (dest / "sub" / "w.bin").read_bytes() == b"w"
    assert (dest / "metrics.jsonl").read_text() == "m"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_files_failure_leaves_destination(tmp_path: Path) -> None:
    dest = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic.atomic_files(dest) as d:
        (d / "config.json").write_text("half")
        raise RuntimeError("crash")
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_file_in_the_way_of_a_directory_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    for dest in (f, f / "run", f / "run" / "deeper"):
        with pytest.raises(InputError, match="is not a directory and cannot be created as one") as err:
            atomic.check_dir_path(dest)
        assert err.value.item == str(dest)
    with pytest.raises(InputError, match="notes.txt is a file"):
        atomic.write_json(f / "run" / "a.json", {})  # was FileExistsError from mkdir
    with pytest.raises(InputError):
        with atomic.atomic_dir(f / "sub"):
            pass
    atomic.check_dir_path(tmp_path / "new" / "dir")  # nothing in the way: fine
    atomic.make_dirs(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()
