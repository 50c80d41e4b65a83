"""An output with real audio files (whole files and one segment) and every array group kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from speechtok.shards.testing import CODES, CUTS, FEATS, UNITS, dummy_rows
from speechtok.shards.writer import commit_group_shard


def cut_json(cid: str, path: Path, start: float, dur: float, rec_dur: float) -> str:
    rec = {"id": f"rec-{cid}", "sources": [{"type": "file", "channels": [0], "source": str(path)}],
           "sampling_rate": 16000, "num_samples": round(rec_dur * 16000), "duration": rec_dur}
    sup = {"id": cid, "recording_id": f"rec-{cid}", "start": 0.0, "duration": dur, "channel": 0}
    return json.dumps({"id": cid, "start": start, "duration": dur, "channel": 0, "recording": rec,
                       "supervisions": [sup], "type": "MonoCut"})


def build_audio_output(tmp: Path, num_cuts: int = 5, shard_size: int = 3, *,
                       durations: bool = True) -> tuple[Path, dict[str, Any]]:
    """Cuts (row 2 is the segment [0.5, 0.8) s of a 2 s file) + units, codes, feats groups;
    returns (output dir, {"rows": rows per group, "waves": {id: float32 samples of the cut}})."""
    audio = tmp / "audio"
    audio.mkdir(parents=True)
    rows = dummy_rows(num_cuts)
    waves: dict[str, np.ndarray] = {}
    long = (np.random.default_rng(1).uniform(-0.5, 0.5, 32000) * 32767).astype(np.int16)
    sf.write(audio / "long.wav", long, 16000, subtype="PCM_16")
    for i, r in enumerate(rows["cuts"]):
        if i == 2:
            r.update(start=0.5, duration=0.3, cut=cut_json(r["id"], audio / "long.wav", 0.5, 0.3, 2.0))
            waves[r["id"]] = long[8000:12800].astype(np.float32) / 32768.0
        else:
            x = np.random.default_rng(10 + i).uniform(-0.3, 0.3, round(r["duration"] * 16000)).astype(np.float32)
            sf.write(audio / f"{i}.wav", x, 16000, subtype="PCM_16")
            r.update(cut=cut_json(r["id"], audio / f"{i}.wav", 0.0, r["duration"], r["duration"]))
            waves[r["id"]] = sf.read(audio / f"{i}.wav", dtype="float32")[0]
    if not durations:
        for r in rows[UNITS.group]:
            r.pop("durations")
    out = tmp / "out"
    for shard, lo in enumerate(range(0, num_cuts, shard_size)):
        for meta in (CUTS, UNITS, CODES, FEATS):
            commit_group_shard(out, shard, meta, rows[meta.group][lo:lo + shard_size])
    return out, {"rows": rows, "waves": waves}


@pytest.fixture()
def audio_output(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return build_audio_output(tmp_path / "src")


@pytest.fixture()
def audio_output_factory() -> Any:
    """`build_audio_output` itself, for tests that need another variant."""
    return build_audio_output
