"""Ids, speakers and paths that a line-oriented export cannot hold are refused, never misparsed.

Ingest keeps ids such as ``"utt 1"``, ``"a\\tb"`` or ``"a\\nb"``. Before: ``--to memmap`` wrote an id with a
line break as two lines of ``ids.txt`` (every later id off by one), ``--to fairseq`` wrote a path with a tab
into the ``.tsv`` (fairseq's ``line.strip().split("\\t")`` then finds 3 fields), and ``--to espnet`` wrote a
speaker with a space into ``utt2spk`` and a path with a trailing space or line break into ``raw/wav.scp``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import InputError
from speechtok.exports.formats import export_output
from speechtok.exports.lines import kaldi_token, kaldi_value, line_break, tsv_field
from speechtok.shards.testing import CODES, CUTS, UNITS, dummy_rows
from speechtok.shards.writer import commit_group_shard


def _cut_json(cid: str, wav: Path, dur: float) -> str:
    """A MonoCut that is the whole file `wav`."""
    rec = {"id": cid, "sources": [{"type": "file", "channels": [0], "source": str(wav)}],
           "sampling_rate": 16000, "num_samples": round(dur * 16000), "duration": dur}
    sup = {"id": cid, "recording_id": cid, "start": 0.0, "duration": dur, "channel": 0}
    return json.dumps({"id": cid, "start": 0.0, "duration": dur, "channel": 0, "recording": rec,
                       "supervisions": [sup], "type": "MonoCut"})


def _output(tmp: Path, ids: list[str], *, names: list[str] | None = None, speakers: list[str] | None = None,
            audio: bool = True) -> Path:
    """An output whose cuts have `ids` (and `speakers`), each a whole audio file named `names`."""
    rows = dummy_rows(len(ids))
    (tmp / "audio").mkdir(parents=True)
    for i, cid in enumerate(ids):
        for g in rows:
            rows[g][i]["id"] = cid
        r = rows["cuts"][i]
        if speakers is not None:
            r["speaker"] = speakers[i]
        if audio:
            wav = tmp / "audio" / (names[i] if names else f"{i}.wav")
            sf.write(wav, np.zeros(round(r["duration"] * 16000), np.float32) + 0.1, 16000, format="WAV")
            r["cut"] = _cut_json(cid, wav, r["duration"])
    out = tmp / "out"
    for meta in (CUTS, UNITS, CODES):
        commit_group_shard(out, 0, meta, rows[meta.group])
    return out


def test_rules() -> None:
    assert [line_break(s) for s in ("a b", "a\tb", "a\nb", "a\rb", "a\x85b", "a\u2028b", "")] == \
        [False, False, True, True, True, True, False]
    assert [kaldi_token(s) for s in ("a-b_1", "a b", "a\tb", "a\u00a0b", "")] == [True, False, False, False, False]
    assert [kaldi_value(s) for s in ("/a b/c.wav", "/a/c.wav ", " /a", "/a\nb", "")] == [True, False, False, False,
                                                                                         False]
    assert [tsv_field(s) for s in ("a b.wav", "a\tb.wav", " a.wav", "a.wav\n", "")] == [True, False, False, False,
                                                                                        False]


def test_memmap_refuses_an_id_with_a_line_break_and_keeps_spaces_and_tabs(tmp_path: Path) -> None:
    out = _output(tmp_path / "ok", ["utt one", "utt\ttab", "trail "], audio=False)
    export_output(out, "memmap", tmp_path / "m", groups=[UNITS.group])
    with open(tmp_path / "m" / "train.ids.txt", encoding="utf-8", newline="") as f:
        assert [line.removesuffix("\n") for line in f] == ["utt one", "utt\ttab", "trail "]
    out = _output(tmp_path / "bad", ["a", "utt\nnl", "b"], audio=False)
    with pytest.raises(InputError, match=r"cut id 'utt\\nnl' holds a line break, and train.ids.txt has one id per "
                       r"line, so --to memmap cannot write it"):
        export_output(out, "memmap", tmp_path / "m2", groups=[UNITS.group])
    assert not (tmp_path / "m2").exists()  # no partial export


def test_fairseq_refuses_a_path_or_id_a_tsv_line_cannot_hold(tmp_path: Path) -> None:
    out = _output(tmp_path / "ok", ["a", "b"], names=["x y.wav", "z.wav"])
    export_output(out, "fairseq", tmp_path / "f", groups=[UNITS.group])
    lines = (tmp_path / "f" / "train.tsv").read_text().splitlines()
    assert [line.strip().split("\t")[0] for line in lines[1:]] == ["x y.wav", "z.wav"]  # fairseq's own parse
    out = _output(tmp_path / "tab", ["a", "b"], names=["x\ty.wav", "z.wav"])
    with pytest.raises(InputError, match=r"the audio path 'x\\ty.wav' of cut 'a' .*line.strip\(\).split"):
        export_output(out, "fairseq", tmp_path / "f2", groups=[UNITS.group])
    out = _output(tmp_path / "ids", ["a", "b\nc"], audio=False)  # no audio path: the .tsv holds ids
    with pytest.raises(InputError, match=r"cut id 'b\\nc' \(it has no audio path\)"):
        export_output(out, "fairseq", tmp_path / "f3", groups=[UNITS.group])
    assert not (tmp_path / "f2").exists() and not (tmp_path / "f3").exists()


def test_espnet_refuses_ids_and_speakers_with_whitespace(tmp_path: Path) -> None:
    for i, bad in enumerate(["cut one", "cut\ttab", "cut\nnl"]):
        out = _output(tmp_path / f"id{i}", ["cut-a", bad])
        with pytest.raises(InputError, match=re.escape(f"cut id {bad!r} is empty or has whitespace")):
            export_output(out, "espnet", tmp_path / f"e{i}", groups=[CODES.group])
    out = _output(tmp_path / "spk", ["cut-a", "cut-b"], speakers=["s1", "spk b"])
    with pytest.raises(InputError, match=r"speaker 'spk b' of cut 'cut-b' has whitespace"):
        export_output(out, "espnet", tmp_path / "e4", groups=[CODES.group])


def test_espnet_writes_audio_a_kaldi_line_cannot_name_as_flac(tmp_path: Path) -> None:
    out = _output(tmp_path / "p", ["cut-a", "cut-b", "cut-c"], names=["a b.wav", "trail.wav ", "new\nline.wav"])
    export_output(out, "espnet", tmp_path / "e", groups=[CODES.group])
    scp = (tmp_path / "e" / "raw" / "wav.scp").read_text(encoding="utf-8").splitlines()
    parsed = dict(line.rstrip().split(maxsplit=1) for line in scp)  # ESPnet's read_2columns_text
    assert len(scp) == 3 and parsed["cut-a"] == str(tmp_path / "p" / "audio" / "a b.wav")  # inner space: kept
    for cid in ("cut-b", "cut-c"):  # trailing space / line break: a FLAC copy under DEST/audio
        assert parsed[cid] == str((tmp_path / "e" / "audio" / f"{cid}.flac").absolute())
        assert sf.info(parsed[cid]).frames > 0
