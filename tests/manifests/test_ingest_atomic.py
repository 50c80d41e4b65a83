"""Re-ingest is atomic: a run that fails keeps the earlier manifest and quarantine whole (issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import InputError
from speechtok.manifests.ingest import ingest
from speechtok.manifests.quarantine import read_quarantine


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    for i in range(3):
        x = np.random.default_rng(i).uniform(-0.3, 0.3, 8000).astype(np.float32)
        sf.write(root / f"u{i}.wav", x, 16000, subtype="PCM_16")
        (root / f"u{i}.txt").write_text(f"text {i}\n")
    for name in ("broken1", "broken2"):
        (root / f"{name}.wav").write_bytes(b"RIFF not really a wave file")
        (root / f"{name}.txt").write_text("broken\n")
    return root


def test_failed_reingest_keeps_manifest_and_quarantine(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    rep = ingest(src, out, progress=False)
    assert rep.num_cuts == 3 and rep.num_quarantined == 2
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert [q["id"] for q in read_quarantine(out / "quarantine.jsonl")] == ["broken1", "broken2"]
    with pytest.raises(InputError, match="broken1"):
        ingest(src, out, strict=True, progress=False)  # stops at the first bad file, mid-run
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # nothing truncated, no temporary left behind
