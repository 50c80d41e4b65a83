"""`speechtok export --to slam`: SLAM-LLM JSONL, segments cut to files; read back and checked
line by line (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.cli import main
from speechtok.errors import InputError
from speechtok.exports.formats import export_output
from speechtok.shards.testing import CUTS, UNITS, dummy_rows
from speechtok.shards.writer import commit_group_shard


def _cut_json(cid: str, path: Path, start: float, dur: float, rec_dur: float) -> str:
    rec = {"id": f"rec-{cid}", "sources": [{"type": "file", "channels": [0], "source": str(path)}],
           "sampling_rate": 16000, "num_samples": round(rec_dur * 16000), "duration": rec_dur}
    return json.dumps({"id": cid, "start": start, "duration": dur, "channel": 0, "recording": rec,
                       "supervisions": [], "type": "MonoCut"})


def _output(tmp: Path, *, drop_text: bool = False) -> tuple[Path, dict, np.ndarray]:
    audio = tmp / "audio"
    audio.mkdir()
    rows = dummy_rows(5)
    long = (np.random.default_rng(1).uniform(-0.5, 0.5, 32000) * 32767).astype(np.int16)
    sf.write(audio / "long.wav", long, 16000, subtype="PCM_16")
    for i, r in enumerate(rows["cuts"]):
        if i == 2:  # a segment [0.5, 0.8) s of a 2 s recording
            r.update(start=0.5, duration=0.3, cut=_cut_json(r["id"], audio / "long.wav", 0.5, 0.3, 2.0))
        else:
            x = np.random.default_rng(10 + i).uniform(-0.3, 0.3, round(r["duration"] * 16000)).astype(np.float32)
            sf.write(audio / f"{i}.wav", x, 16000, subtype="PCM_16")
            r.update(cut=_cut_json(r["id"], audio / f"{i}.wav", 0.0, r["duration"], r["duration"]))
    if drop_text:
        rows["cuts"][4]["text"] = None
    out = tmp / "out"
    for shard, lo in enumerate(range(0, 5, 3)):
        for meta in (CUTS, UNITS):
            commit_group_shard(out, shard, meta, rows[meta.group][lo:lo + 3])
    return out, rows, long


def test_slam_export_round_trip(tmp_path: Path) -> None:
    out, rows, long = _output(tmp_path)
    dest = tmp_path / "slam"
    assert main(["export", str(out), "--to", "slam", "--group", UNITS.group, "-o", str(dest)]) == 0
    lines = [json.loads(x) for x in (dest / "train.jsonl").read_text().splitlines()]
    assert len(lines) == 5
    for line, cut, units in zip(lines, rows["cuts"], rows[UNITS.group], strict=True):
        assert set(line) == {"key", "source", "target", UNITS.group}  # schema of every line
        assert line["key"] == cut["id"] and line["target"] == cut["text"]
        assert line[UNITS.group] == units["units"].tolist()
        assert Path(line["source"]).is_file()
    seg = lines[2]
    assert Path(seg["source"]).parent == dest.absolute() / "audio"  # cut to its own file
    got, sr = sf.read(seg["source"], dtype="int16")
    assert sr == 16000 and np.array_equal(got, long[8000:12800])  # exactly [0.5, 0.8) s
    assert lines[0]["source"] == str(tmp_path / "audio" / "0.wav")  # whole files in place
    plain = tmp_path / "plain"
    export_output(out, "slam", plain)  # no token group asked: three columns
    assert set(json.loads((plain / "train.jsonl").read_text().splitlines()[0])) == {"key", "source", "target"}


def test_slam_export_refuses_a_cut_without_text(tmp_path: Path) -> None:
    out, _, _ = _output(tmp_path, drop_text=True)
    with pytest.raises(InputError, match="no transcript"):
        export_output(out, "slam", tmp_path / "slam")
    assert not (tmp_path / "slam").exists()  # nothing half-written


def test_nemo_manifest_export_reads_back_through_ingest(tmp_path: Path) -> None:
    import gzip

    from speechtok.manifests.ingest import ingest

    out, rows, _ = _output(tmp_path)
    dest = tmp_path / "nemo"
    export_output(out, "nemo", dest, groups=[UNITS.group])
    lines = [json.loads(x) for x in (dest / "train_manifest.json").read_text().splitlines()]
    assert [x["key"] for x in lines] == [c["id"] for c in rows["cuts"]]
    for line, cut, units in zip(lines, rows["cuts"], rows[UNITS.group], strict=True):
        assert {"audio_filepath", "duration", "text", "lang", "speaker", "key", UNITS.group} <= set(line)
        assert ("offset" in line) == (cut["id"] == rows["cuts"][2]["id"])
        assert line[UNITS.group] == units["units"].tolist()
    rep = ingest(dest / "train_manifest.json", tmp_path / "back", progress=False)  # NeMo's own format back in
    assert rep.num_cuts == 5 and rep.num_quarantined == 0
    with gzip.open(rep.cuts_path, "rt") as fh:
        back = [json.loads(x) for x in fh]
    for c, cut in zip(back, rows["cuts"], strict=True):
        sup = c["supervisions"][0]
        assert (sup["text"], sup["speaker"], sup["language"]) == (cut["text"], cut["speaker"], cut["language"])
        assert c["duration"] == pytest.approx(cut["duration"], abs=1e-3)
    assert back[2]["start"] == pytest.approx(0.5)
