"""`speechtok train token` SIGKILLed mid-run, then rerun: the loss curve equals an uninterrupted run's.

Both runs are real `speechtok` processes (1 thread, same seed) on synthetic shards; the killed
one is stopped with SIGKILL once its first checkpoint exists, wherever it is then (inside a
step, mid-checkpoint-write, logging...), and the same command is run again to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechtok.paths import ROOT
from speechtok.trainers.token.synthetic import write_synthetic_shards


def _cmd(shards: Path, out: Path) -> list[str]:
    sets = {"data.shards": str(shards), "train.max_steps": "40", "train.log_every": "1",
            "train.checkpoint_every": "8", "train.keep_checkpoints": "10", "train.eval_every": "0",
            "eval.asr_utts": "0",
            "data.tasks": "[unitlm, asr]"}
    return [sys.executable, "-m", "speechtok", "train", "token", str(ROOT / "recipes" / "token_tiny.yaml"),
            "-o", str(out), *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "AUTO,STRICT"}


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {int(r["step"]): float(r["loss"]) for r in rows if "loss" in r}


def test_sigkill_then_rerun_gives_the_uninterrupted_loss_curve(tmp_path: Path) -> None:
    shards = write_synthetic_shards(tmp_path / "syn")
    full = tmp_path / "full"
    subprocess.run(_cmd(shards, full), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(shards, killed), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "latest").exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if not (killed / "model").exists():  # not finished when killed
        before = _losses(killed)
        assert max(before) < 39
    first = killed / "checkpoints" / (killed / "checkpoints" / "latest").read_text().strip() / "model.safetensors"
    stamp = first.stat().st_mtime_ns
    subprocess.run(_cmd(shards, killed), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=600)
    assert first.stat().st_mtime_ns == stamp  # resumed from that checkpoint, not restarted from step 0
    want, got = _losses(full), _losses(killed)
    assert sorted(got) == sorted(want) == list(range(40))
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=0, abs=0), step  # bit-identical on CPU
