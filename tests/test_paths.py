"""`file_stem_for_id`: one file per id, whatever the id (slashes, percent signs, unicode, length)."""

from __future__ import annotations

from pathlib import Path

from speechtok.paths import file_stem_for_id


def test_distinct_ids_get_distinct_bounded_file_names(tmp_path: Path) -> None:
    ids = ["a/b", "a_b", "a%2Fb", "a b", "../../etc", ".hidden", "ünï/cödé", "x" * 300, "x" * 301, "", "..", "."]
    stems = [file_stem_for_id(i) for i in ids]
    assert len(set(stems)) == len(ids)  # "a/b" and "a_b" were both "a_b"
    assert file_stem_for_id("a_b") == "a_b" and file_stem_for_id("utt-001.x") == "utt-001.x"
    for stem in stems:
        name = stem + ".flac"
        assert "/" not in name and not name.startswith(".") and len(name.encode()) < 255
        (tmp_path / name).write_bytes(b"")  # every one is a file name this file system takes
    assert len(list(tmp_path.iterdir())) == len(ids)
