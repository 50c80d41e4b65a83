"""Durable checkpoints (issue 14): SIGKILL inside a checkpoint save at each of 5 points, then
rerun: training resumes from the newest complete checkpoint and the loss curve is identical to
an uninterrupted run; `metrics.jsonl` is only appended to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from speechtok.models.checkpoint import is_complete, latest_checkpoint, save_checkpoint
from speechtok.paths import ROOT
from speechtok.trainers.loop import read_metrics

DRIVER = Path(__file__).parents[1] / "trainers" / "checkpoint_driver.py"
POINTS = ("ckpt_after_model", "ckpt_before_rename", "ckpt_after_rename", "ckpt_after_latest", "ckpt_mid_prune")


def _train(run: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "AUTO,STRICT"}
    env.pop("SPEECHTOK_FAULT", None)
    if fault:
        env["SPEECHTOK_FAULT"] = fault
    return subprocess.run([sys.executable, str(DRIVER), str(run)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _losses(run: Path) -> dict[int, float]:
    return {int(r["step"]): float(r["loss"]) for r in read_metrics(run) if "loss" in r}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    run = tmp_path_factory.mktemp("full") / "run"
    done = _train(run)
    assert done.returncode == 0, done.stderr
    return _losses(run)


# one point in the fast suite, all five with `-m slow` (each is two ~10 s training processes)
@pytest.mark.parametrize("point", [p if p == "ckpt_after_rename" else pytest.param(p, marks=pytest.mark.slow)
                                   for p in POINTS])
def test_sigkill_inside_checkpoint_save_resumes_identically(point: str, tmp_path: Path,
                                                           uninterrupted: dict[int, float]) -> None:
    run = tmp_path / "run"
    # in the 3rd save (step 12): two complete checkpoints exist, so pruning has something to
    # remove; pruning first happens in that save, so its point is hit for the 1st time there
    killed = _train(run, f"{point}:{1 if point == 'ckpt_mid_prune' else 3}")
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
    lines_before = (run / "metrics.jsonl").read_text()
    resume_from = latest_checkpoint(run)
    assert resume_from is not None and is_complete(resume_from)
    step = int(json.loads((resume_from / "trainer.json").read_text())["step"])
    # newest complete: the 3rd save (step 12) once its directory is renamed, else the 2nd (step 8)
    assert step == (12 if point in ("ckpt_after_rename", "ckpt_after_latest", "ckpt_mid_prune") else 8), step
    rerun = _train(run)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    text = (run / "metrics.jsonl").read_text()
    assert text.startswith(lines_before)  # appended, never truncated
    assert f'{{"start": {step}}}' in text
    got = _losses(run)
    assert sorted(got) == sorted(uninterrupted) == list(range(30))
    for s, loss in uninterrupted.items():
        assert got[s] == loss, (point, s)  # bit-identical on CPU
    assert not list((run / "checkpoints").glob(".*"))  # no temporaries left after the rerun


def test_dangling_latest_does_not_restart_from_zero(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    for step in (4, 8):
        save_checkpoint(tmp_path, step, model, opt, data={"epoch": 0, "batch": step}, keep=3)
    (tmp_path / "checkpoints" / "latest").write_text("step_0000099")  # points at nothing
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.name == "step_0000008"
    # a truncated file makes a checkpoint incomplete: the previous one is taken
    (found / "model.safetensors").write_bytes(b"x")
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.name == "step_0000004"


def test_read_metrics_drops_the_interrupted_tail(tmp_path: Path) -> None:
    lines = [{"start": 0}, {"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.8},
             {"start": 1}, {"step": 1, "loss": 0.9}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 2, "lo')
    assert [r["step"] for r in read_metrics(tmp_path)] == [0, 1]
