"""A sampling rate that a lhotse manifest declares is checked like a header's: a whole number of Hz
in the configured range, else the recording is ``bad_sampling_rate`` (before: out-of-range rates were
``duration_mismatch``, 16000.7 and "16000" were truncated/parsed and kept, "abc" a ValueError)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import CutSet

from speechtok.manifests.audio_check import AudioCheckConfig
from speechtok.manifests.cutbuild import BuildConfig, process_item
from speechtok.manifests.ingest import ingest
from speechtok.manifests.items import SegmentSpec, SourceItem
from speechtok.manifests.quarantine import read_quarantine

SR = 16000


def _wav(path: Path) -> Path:
    t = np.arange(SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    return path


def _ingest_recordings(tmp_path: Path, field: str,
                       values: list[object]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Ingests one lhotse recording per value of `field` (the others valid); kept ids and quarantined reasons."""
    wav = _wav(tmp_path / "a.wav")
    rows = [{"id": f"r{i}", "sources": [{"type": "file", "channels": [0], "source": str(wav)}],
             "sampling_rate": SR, "num_samples": SR, "duration": 1.0, "channel_ids": [0], field: v}
            for i, v in enumerate(values)]
    manifest = tmp_path / "recordings.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(manifest, tmp_path / "out", kind="lhotse", progress=False)
    kept = sorted(c.id for c in CutSet.from_file(tmp_path / "out" / "cuts.jsonl.gz"))
    quarantined = {str(r["id"]): (str(r["reason"]), str(r["detail"]))
                   for r in read_quarantine(tmp_path / "out" / "quarantine.jsonl") if not r["kept"]}
    return kept, quarantined


def test_lhotse_declared_rate_outside_range_or_not_whole_is_bad_sampling_rate(tmp_path: Path) -> None:
    rates: list[object] = [16000, 16000.0, 1, 0, -16000, 1e12, 16000.7, "16000", "abc", True]
    kept, quarantined = _ingest_recordings(tmp_path, "sampling_rate", rates)
    assert kept == ["r0", "r1"]
    assert {k: v[0] for k, v in quarantined.items()} == {f"r{i}": "bad_sampling_rate" for i in range(2, 10)}
    assert quarantined["r2"][1].startswith("the manifest declares 1 Hz, outside [1000, 384000] Hz")
    assert quarantined["r8"][1] == "the manifest declares a sampling rate of 'abc', not a whole number of Hz"


def test_declared_rate_uses_the_configured_range(tmp_path: Path) -> None:
    wav = _wav(tmp_path / "a.wav")
    item = SourceItem(recording_id="a", path=wav, origin="t", segments=(SegmentSpec(id="a"),),
                      declared_sampling_rate=SR)
    narrow = BuildConfig(check=AudioCheckConfig(min_sampling_rate=1000, max_sampling_rate=8000))
    res = process_item(item, narrow)
    assert not res.cuts and [p.reason for p in res.problems] == ["bad_sampling_rate"]
    assert "the manifest declares 16000 Hz, outside [1000, 8000] Hz" in res.problems[0].detail
    assert [c.id for c in process_item(item, BuildConfig()).cuts] == ["a"]


def test_lhotse_declared_num_samples_must_be_a_whole_number(tmp_path: Path) -> None:
    """A ``num_samples`` of 16000.7 was truncated, ``true`` read as 1 and ``"abc"`` a raw ValueError."""
    kept, quarantined = _ingest_recordings(tmp_path, "num_samples", [SR, float(SR), SR + 0.7, True, "abc", -SR])
    assert kept == ["r0", "r1"]
    assert {k: v[0] for k, v in quarantined.items()} == {f"r{i}": "bad_entry" for i in range(2, 6)}
    assert quarantined["r4"][1].startswith("the manifest declares num_samples 'abc', not a whole number")
