"""`speechtok demo` end to end, as on a fresh offline machine without ../shared: the espeak-ng
corpus, the demo recipe (fbank + k-means units in shards) and the closing three-family
comparison, whose text family then decodes with PocketSphinx instead of Whisper."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make setup)")


def test_demo_runs_offline_and_ends_with_a_comparison(tmp_path: Path) -> None:
    env = {**os.environ, "SPEECHTOK_SHARED": str(tmp_path / "no-shared"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "speechtok", "demo", "-o", str(out), "--corpus", "demo:48",
         "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "speechtok demo summary" in proc.stdout and "speechtok demo comparison" in proc.stdout
    report = json.loads((out / "compare" / "compare.json").read_text())
    fams = {f["family"]: f for f in report["families"]}
    assert set(fams) == {"text", "latent", "token"}
    for name, f in fams.items():
        assert f["status"] == "ok", (name, f.get("traceback"))
        assert f["wer"] >= 0 and f["eval_utts"] > 0
    assert "PocketSphinx" in fams["text"]["data_needed"]
    assert (out / "compare" / "compare.md").is_file() and (out / "compare" / "wer.png").is_file()
