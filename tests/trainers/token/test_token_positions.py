"""Token sequences longer than Whisper's 448 learned positions are left out and counted, not an
IndexError inside the position table (`llm.kind: whisper_decoder`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechtok.paths import ROOT
from speechtok.shards.schema import GroupMeta
from speechtok.shards.writer import commit_group_shard
from speechtok.trainers.token import run_recipe
from speechtok.trainers.token.synthetic import CUTS, word_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _shards(out: Path) -> Path:
    """12 cuts over 4 speakers; cuts 0, 4 and 8 have an 800-word transcript (> 448 tokens)."""
    units = GroupMeta(group="units.km32", kind="units", stage="kmeans_units", stage_version="1", config={"k": 32},
                      fingerprint="syn-units", frame_rate=50.0, vocab_size=32)
    cuts, rows = [], []
    for i in range(12):
        words = ["CAT", "DOG"] * (400 if i % 4 == 0 else 1)
        u = np.array([31, *[f for w in words[:2] for f in word_frames(w)], 31], dtype=np.uint16)
        cuts.append({"id": f"c{i}", "recording_id": f"c{i}", "start": 0.0, "duration": len(u) / 50.0,
                     "sampling_rate": 16000, "text": " ".join(words), "speaker": f"spk{i % 4}", "language": "en"})
        rows.append({"id": f"c{i}", "units": u})
    commit_group_shard(out, 0, CUTS, cuts)
    commit_group_shard(out, 0, units, rows)
    return out


def test_whisper_backbone_leaves_out_sequences_past_its_positions(
        tmp_path: Path, whisper_ct2_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = _shards(tmp_path / "s")
    rc = run_recipe(ROOT / "recipes" / "token_tiny.yaml", tmp_path / "run", {
        "data.shards": str(shards), "data.tasks": ["asr"], "data.split": {"train": 0.5, "seed": 0},
        "llm.kind": "whisper_decoder", "llm.path": str(whisper_ct2_dir), "train.max_steps": 1,
        "train.eval_every": 1, "train.checkpoint_every": 1, "eval.asr_utts": 1, "eval.max_new_tokens": 4})
    assert rc == 0  # was: IndexError: index 448 is out of bounds for dimension 0 with size 448
    out = capsys.readouterr().out
    assert "sequences longer than the model's 448 learned positions" in out
    left = out.split("left out ")[1].split(" training and ")
    assert int(left[0]) + int(left[1].split(" dev")[0]) == 3  # the three 800-word cuts, wherever they fell
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["steps"] == 1
