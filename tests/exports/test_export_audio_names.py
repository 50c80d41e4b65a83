"""Exported per-cut audio files: cuts whose ids differ only by ``/`` vs ``_`` get their own files
(both were written to ``a_b.flac``, the second overwriting the first)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.exports.audio import audio_file


def _segment_row(cid: str, path: Path, start: float) -> dict[str, object]:
    rec = {"id": "rec", "sources": [{"type": "file", "channels": [0], "source": str(path)}],
           "sampling_rate": 16000, "num_samples": 16000, "duration": 1.0}
    cut = {"id": cid, "start": start, "duration": 0.25, "channel": 0, "recording": rec, "supervisions": [],
           "type": "MonoCut"}
    return {"id": cid, "cut": json.dumps(cut)}


def test_segments_with_ids_a_slash_b_and_a_underscore_b_keep_their_own_audio(tmp_path: Path) -> None:
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    sf.write(tmp_path / "long.wav", wave, 16000, subtype="FLOAT")
    out = tmp_path / "audio"
    paths = {cid: audio_file(_segment_row(cid, tmp_path / "long.wav", start), out, out, "test")
             for cid, start in (("a/b", 0.0), ("a_b", 0.5))}
    assert paths["a/b"] != paths["a_b"]
    for cid, start in (("a/b", 0), ("a_b", 8000)):
        got = sf.read(paths[cid], dtype="float32")[0]
        np.testing.assert_allclose(got, wave[start:start + 4000], atol=1e-6)  # 24-bit FLAC
