"""`export --to hf-audio | nemo (Shar half)`: read back with the target's own reader
(`datasets.load_from_disk`, lhotse's Shar reader); ESPnet: tests/exports/test_export_espnet.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from speechtok.cli import main
from speechtok.shards.testing import CODES, FEATS, UNITS

Output = tuple[Path, dict[str, Any]]


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def test_hf_audio_round_trip(tmp_path: Path, audio_output: Output) -> None:
    datasets = pytest.importorskip("datasets")
    out, data = audio_output
    dest = tmp_path / "hf"
    assert main(["export", str(out), "--to", "hf-audio", "-o", str(dest)]) == 0
    ds = datasets.load_from_disk(str(dest))
    assert isinstance(ds.features["audio"], datasets.Audio)
    ds = ds.cast_column("audio", datasets.Audio(decode=False))  # decoding needs torchcodec
    units, codes, feats = (_by_id(data["rows"][g.group]) for g in (UNITS, CODES, FEATS))
    assert ds["id"] == [r["id"] for r in data["rows"]["cuts"]]
    for row, cut in zip(ds, data["rows"]["cuts"], strict=True):
        cid = row["id"]
        assert row["text"] == cut["text"] and row["speaker"] == cut["speaker"]
        wave, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert sr == 16000
        np.testing.assert_allclose(wave, data["waves"][cid], atol=1e-4)
        assert row[UNITS.group] == units[cid]["units"].tolist()
        assert row[UNITS.group + ".durations"] == units[cid]["durations"].tolist()
        assert np.array_equal(np.asarray(row[CODES.group]), codes[cid]["codes"])
        assert np.array_equal(np.asarray(row[FEATS.group], np.float16), feats[cid]["feats"])
    info = json.loads((dest / "dataset_info.json").read_text())
    assert "units-fp-1" in info["description"]
    # readable on a machine without speechtok: only `datasets` is imported
    code = ("import sys, datasets; d = datasets.load_from_disk(sys.argv[1]); "
            "assert 'speechtok' not in sys.modules; print(len(d), d.column_names)")
    res = subprocess.run([sys.executable, "-c", code, str(dest)], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("5 ") and "audio" in res.stdout


def test_nemo_shar_read_back_by_lhotse(tmp_path: Path, audio_output: Output) -> None:
    from lhotse import CutSet

    out, data = audio_output
    dest = tmp_path / "nemo"
    assert main(["export", str(out), "--to", "nemo", "-o", str(dest)]) == 0
    manifest = [json.loads(x) for x in (dest / "train_manifest.json").read_text().splitlines()]
    assert len(manifest) == 5 and manifest[2]["offset"] == 0.5
    cuts = list(CutSet.from_shar(in_dir=str(dest / "shar")))
    assert [c.id for c in cuts] == [r["id"] for r in data["rows"]["cuts"]]
    units, codes, feats = (_by_id(data["rows"][g.group]) for g in (UNITS, CODES, FEATS))
    for c in cuts:
        np.testing.assert_allclose(c.load_audio()[0], data["waves"][c.id], atol=1e-4)
        assert np.array_equal(c.load_custom("units_km50"), units[c.id]["units"])
        assert np.array_equal(c.load_custom("units_km50_durations"), units[c.id]["durations"])
        assert np.array_equal(c.load_custom("codes_q4"), codes[c.id]["codes"])
        assert np.array_equal(c.load_custom("feats_d8"), feats[c.id]["feats"])
    fields = json.loads((dest / "shar_fields.json").read_text())
    assert fields["codes_q4"]["provenance"]["num_codebooks"] == 4


def test_units_without_durations_export(tmp_path: Path, audio_output_factory: Any) -> None:
    """Regression: a units group without its side column broke hf-audio and the Shar writer."""
    datasets = pytest.importorskip("datasets")
    from lhotse import CutSet

    out, data = audio_output_factory(tmp_path / "src", durations=False)
    assert main(["export", str(out), "--to", "hf-audio", "-o", str(tmp_path / "hf")]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds[UNITS.group][0] == data["rows"][UNITS.group][0]["units"].tolist()
    assert main(["export", str(out), "--to", "nemo", "-o", str(tmp_path / "nemo")]) == 0
    cut = next(iter(CutSet.from_shar(in_dir=str(tmp_path / "nemo" / "shar"))))
    assert not cut.has_custom("units_km50_durations")
