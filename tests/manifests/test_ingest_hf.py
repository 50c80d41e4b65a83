"""`ingest --kind hf`: a Hugging Face dataset built here with `datasets` (embedded FLAC and WAV
bytes, a path-string row, corrupt entries quarantined with their reason)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.errors import ConfigError
from speechtok.manifests.ingest import ingest
from speechtok.manifests.sources import detect_kind

datasets = pytest.importorskip("datasets")

SR = 16000


def _wave(seed: int, seconds: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _encode(wave: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, SR, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="float32")[0]


@pytest.fixture()
def hf_rows(tmp_path: Path) -> dict[str, object]:
    flac, wav = _encode(_wave(1), "FLAC"), _encode(_wave(2), "WAV")
    truncated = _encode(_wave(3), "WAV")[:-4000]  # header claims more data than there is
    on_disk = tmp_path / "clips" / "d.wav"
    on_disk.parent.mkdir()
    sf.write(on_disk, _wave(4), SR, subtype="PCM_16")
    rows = {
        "id": ["a", "b", "c", "d", "e"],
        "audio": [
            {"bytes": flac, "path": "a.flac"},
            {"bytes": wav, "path": "b.wav"},
            {"bytes": b"this is not audio at all" * 10, "path": "c.wav"},
            {"bytes": None, "path": str(on_disk)},
            {"bytes": truncated, "path": "e.wav"},
        ],
        "sentence": ["one", "two", "three", "four", "five"],
        "speaker": ["s1", "s1", "s2", "s2", "s3"],
        "score": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
    return {"rows": rows, "flac": flac, "wav": wav, "disk": on_disk}


def _dataset(rows: dict[str, object]) -> object:
    # cast (not encode): encoding an Audio column needs torchcodec, which is not installed
    ds = datasets.Dataset.from_dict(rows)
    return ds.cast_column("audio", datasets.Audio(decode=False))


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
@pytest.mark.parametrize("extract", [False, True])
def test_ingest_hf_dataset(tmp_path: Path, hf_rows: dict[str, object], layout: str, extract: bool) -> None:
    ds = _dataset(hf_rows["rows"])  # type: ignore[arg-type]
    src = tmp_path / "ds"
    if layout == "save_to_disk":
        ds.save_to_disk(str(src))  # type: ignore[attr-defined]
    else:
        (src / "data").mkdir(parents=True)
        ds.to_parquet(str(src / "data" / "train-00000-of-00001.parquet"))  # type: ignore[attr-defined]
    assert detect_kind(src) == "hf"
    out = tmp_path / "out"
    report = ingest(src, out, kind="auto", text_column="sentence", extract_flac=extract)
    assert report.kind == "hf"
    assert report.num_cuts == 3 and report.num_quarantined == 2
    q = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in q}
    assert reasons == {"c": "unreadable", "e": "truncated"}
    assert all("speechtok-audio-" not in r["detail"] for r in q)  # the temp file is never named
    cuts = {c.id: c for c in CutSet.from_file(out / "cuts.jsonl.gz")}
    assert sorted(cuts) == ["a", "b", "d"]
    assert [cuts[k].supervisions[0].text for k in "abd"] == ["one", "two", "four"]
    assert cuts["a"].supervisions[0].speaker == "s1"
    assert cuts["b"].supervisions[0].custom == {"score": 2.0}
    for key, data in (("a", hf_rows["flac"]), ("b", hf_rows["wav"])):
        src_type = cuts[key].recording.sources[0].type
        assert src_type == ("file" if extract else "command")
        if extract:
            assert Path(cuts[key].recording.sources[0].source).parent == out / "audio"
        np.testing.assert_array_equal(cuts[key].load_audio()[0], _decoded(data))  # type: ignore[arg-type]
    if extract:  # FLAC bytes are copied as they are
        assert (out / "audio" / "a.flac").read_bytes() == hf_rows["flac"]
    # `datasets` embeds the file of a path-only Audio cell when it saves; either way it loads
    np.testing.assert_array_equal(cuts["d"].load_audio()[0], sf.read(hf_rows["disk"], dtype="float32")[0])


def test_ingest_hf_bad_column(tmp_path: Path, hf_rows: dict[str, object]) -> None:
    src = tmp_path / "ds"
    _dataset(hf_rows["rows"]).save_to_disk(str(src))  # type: ignore[attr-defined, arg-type]
    with pytest.raises(ConfigError, match="transcript_col"):
        ingest(src, tmp_path / "out", kind="hf", text_column="transcript_col")
    with pytest.raises(ConfigError, match="must be a column"):
        ingest(src, tmp_path / "out2", kind="hf", audio_column="sentence_missing")
    with pytest.raises(ConfigError, match="Audio struct"):
        ingest(src, tmp_path / "out3", kind="hf", audio_column="score")


def test_ingest_hf_path_column_and_cli(tmp_path: Path, hf_rows: dict[str, object]) -> None:
    from speechtok.cli import main

    disk = hf_rows["disk"]
    ds = datasets.Dataset.from_dict({"file": [str(disk), "missing.wav"], "txt": ["x", "y"], "who": ["p", "q"]})
    src = tmp_path / "pathds"
    ds.save_to_disk(str(src))
    out = tmp_path / "out"
    rc = main(["ingest", str(src), "-o", str(out), "--kind", "hf", "--audio-column", "file",
               "--text-column", "txt", "--speaker-column", "who", "--no-progress"])
    assert rc == 0
    cuts = list(CutSet.from_file(out / "cuts.jsonl.gz"))
    assert len(cuts) == 1 and cuts[0].supervisions[0].speaker == "p"
    q = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in q] == ["missing_file"]
