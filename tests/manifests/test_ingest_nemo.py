"""`speechtok ingest --kind nemo`: NeMo JSONL manifests, whole files and segments (issue 19)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.cli import main
from speechtok.manifests.ingest import ingest
from speechtok.manifests.quarantine import read_quarantine
from speechtok.manifests.sources import detect_kind


def _wav(path: Path, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(-0.3, 0.3, int(16000 * seconds)).astype(np.float32)
    sf.write(path, x, 16000, subtype="PCM_16")


def _manifest(root: Path) -> Path:
    _wav(root / "audio" / "a.wav", 1.0, 1)
    _wav(root / "audio" / "b.wav", 2.0, 2)
    _wav(root / "audio" / "c.wav", 1.0, 3)
    lines = [
        {"audio_filepath": "audio/a.wav", "duration": 1.0, "text": "hello world", "lang": "en", "speaker": "s1"},
        {"audio_filepath": "audio/b.wav", "duration": 0.5, "offset": 0.25, "text": "first part", "spk": "s2"},
        {"audio_filepath": "audio/b.wav", "duration": 0.5, "offset": 1.0, "text": "second part", "lang": "de",
         "emotion": "neutral"},
        {"audio_filepath": "audio/c.wav", "duration": 7.0, "text": "declared too long"},
        {"audio_filepath": "audio/missing.wav", "duration": 1.0, "text": "gone"},
    ]
    m = root / "train_manifest.json"
    m.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return m


def _cuts(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def test_nemo_manifest_ingests_files_and_segments(tmp_path: Path) -> None:
    m = _manifest(tmp_path / "corpus")
    assert detect_kind(m) == "nemo"
    rep = ingest(m, tmp_path / "out", progress=False)  # auto-detected
    cuts = {c["id"]: c for c in _cuts(rep.cuts_path)}
    assert sorted(cuts) == ["a", "b-00000250-00000500", "b-00001000-00000500"]
    seg = cuts["b-00000250-00000500"]
    assert (seg["start"], seg["duration"]) == (0.25, 0.5)
    sup = seg["supervisions"][0]
    assert (sup["text"], sup["speaker"]) == ("first part", "s2")
    other = cuts["b-00001000-00000500"]["supervisions"][0]
    assert other["language"] == "de" and other["custom"] == {"emotion": "neutral"}
    whole = cuts["a"]
    assert whole["duration"] == 1.0 and whole["supervisions"][0]["language"] == "en"
    reasons = sorted(q["reason"] for q in read_quarantine(rep.quarantine_path) if not q["kept"])
    assert reasons == ["duration_mismatch", "missing_file"]
    assert main(["ingest", str(m), "-o", str(tmp_path / "cli"), "--kind", "nemo"]) == 0
