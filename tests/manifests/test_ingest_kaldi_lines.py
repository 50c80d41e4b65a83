"""Kaldi side files, one bad line at a time: a `text`/`utt2spk`/`utt2lang` line that is not UTF-8
loses only its utterance, a `reco2dur` value that is not a finite number (or a line that is not
UTF-8) loses only its recording; each is a ``bad_entry`` naming the file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.errors import InputError
from speechtok.manifests.ingest import ingest
from speechtok.manifests.quarantine import read_quarantine

SR = 16000


def _kaldi(tmp_path: Path, files: dict[str, bytes], n: int = 3) -> Path:
    """A Kaldi dir with recordings r1..rN (1 s tones) and `files` written as given."""
    d = tmp_path / "kaldi"
    d.mkdir()
    t = np.arange(SR) / SR
    scp = []
    for i in range(1, n + 1):
        sf.write(tmp_path / f"a{i}.wav", (0.3 * np.sin(2 * np.pi * 200 * i * t)).astype(np.float32), SR)
        scp.append(f"r{i} ../a{i}.wav\n")
    (d / "wav.scp").write_text("".join(scp))
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def _ingest(d: Path, out: Path) -> tuple[list[str], dict[str, tuple[str, str, str]]]:
    """(kept cut ids, {id or origin: (reason, origin file:line, detail)}) of quarantined items."""
    ingest(d, out, progress=False)
    cuts = sorted(c.id for c in CutSet.from_file(out / "cuts.jsonl.gz") or [])
    problems = {str(r["id"] or r["origin"]): (str(r["reason"]), Path(str(r["origin"])).name, str(r["detail"]))
                for r in read_quarantine(out / "quarantine.jsonl") if not r["kept"]}
    return cuts, problems


def test_reco2dur_value_that_is_not_a_number_is_a_bad_entry_of_its_recording(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"reco2dur": b"r1 1.0\nr2 abc\nr3 nan\n", "text": b"r1 a\nr2 b\nr3 c\n"})
    cuts, problems = _ingest(d, tmp_path / "out")
    assert cuts == ["r1"]  # r2 and r3 were kept with their declared duration silently ignored
    assert {k: v[:2] for k, v in problems.items()} == {"r2": ("bad_entry", "reco2dur:2"),
                                                       "r3": ("bad_entry", "reco2dur:3")}
    assert "'abc'" in problems["r2"][2] and "finite number" in problems["r2"][2]


def test_reco2dur_good_values_are_still_checked(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"reco2dur": b"r1 1.0\nr2 7.5\n"}, n=2)
    cuts, problems = _ingest(d, tmp_path / "out")
    assert cuts == ["r1"] and problems["r2"][0] == "duration_mismatch"


def test_text_and_utt2spk_lines_not_utf8_quarantine_only_their_utterance(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"text": b"r1 ok\nr2 caf\xe9\nr3 fine\nr9 orphan \xff\n",
                          "utt2spk": b"r1 s1\nr2 s2\nr3 sp\xe9\n"})
    cuts, problems = _ingest(d, tmp_path / "out")  # was an InputError stopping the whole ingest
    assert cuts == ["r1"]
    assert {k: v[:2] for k, v in problems.items()} == {
        "r2": ("bad_entry", "text:2"), "r3": ("bad_entry", "utt2spk:3"), "r9": ("bad_entry", "text:4")}
    assert problems["r2"][2] == ("text: line is not UTF-8 (byte 0xe9 at column 7); convert the file to UTF-8, "
                                 "e.g. with iconv")


def test_segment_whose_text_is_not_utf8_loses_only_that_segment(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"segments": b"u1 r1 0.0 0.4\nu2 r1 0.5 0.9\n",
                          "text": b"u1 ok\nu2 \xe9t\xe9\n\xe9x y\n"}, n=1)
    cuts, problems = _ingest(d, tmp_path / "out")
    assert cuts == ["u1"]
    assert {k: v[:2] for k, v in problems.items()} == {"u2": ("bad_entry", "text:2"),
                                                       f"{d / 'text'}:3": ("bad_entry", "text:3")}


def test_every_segment_bad_loses_the_recording_without_a_whole_file_cut(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"segments": b"u1 r1 0.0 0.4\n", "text": b"u1 \xe9\n"}, n=2)
    cuts, problems = _ingest(d, tmp_path / "out")
    assert cuts == ["r2"] and list(problems) == ["u1"]  # no cut "r1" made of the whole file


def test_spk2gender_not_utf8_still_names_file_and_line(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"utt2spk": b"r1 s1\n", "spk2gender": b"s1 m\ns2 \xe9\n"}, n=1)
    with pytest.raises(InputError, match=r"spk2gender:2: line is not UTF-8 \(byte 0xe9 at column 4\)"):
        ingest(d, tmp_path / "out", progress=False)


def test_one_utterance_bad_in_two_side_files_is_one_problem_naming_both(tmp_path: Path) -> None:
    d = _kaldi(tmp_path, {"text": b"r1 ok\nr2 caf\xe9\n", "utt2spk": b"r1 s1\nr2 s\xe92\n"}, n=2)
    cuts, problems = _ingest(d, tmp_path / "out")
    assert cuts == ["r1"] and list(problems) == ["r2"] and problems["r2"][1] == "text:2"
    assert problems["r2"][2].startswith("text: line is not UTF-8") and f"utt2spk: line is not UTF-8 (byte 0xe9 at " \
        f"column 5); convert the file to UTF-8, e.g. with iconv ({d / 'utt2spk'}:2)" in problems["r2"][2]

