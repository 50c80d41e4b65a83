"""`speechtok transcribe`: a trained run decodes shards; on its own dev shards it gives its dev WER."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.cli import main
from speechtok.errors import ConfigError, InputError
from speechtok.paths import ROOT
from speechtok.trainers.hyps import read_hyps
from speechtok.trainers.latent import run_recipe as run_latent
from speechtok.trainers.token import run_recipe as run_token
from speechtok.trainers.token.synthetic import write_synthetic_shards
from speechtok.trainers.transcribe import transcribe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("syn"), feats_dim=16, num_cuts=30)


@pytest.fixture(scope="module")
def test_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("syn_test"), feats_dim=16, num_cuts=8, seed=1)


def _same(a: list[dict], b: list[dict]) -> None:
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert [r["hypothesis"] for r in a] == [r["hypothesis"] for r in b]
    assert [r["reference"] for r in a] == [r["reference"] for r in b]


def test_latent_run_transcribes_its_dev_shards_to_its_dev_wer(shards: Path, test_shards: Path,
                                                              tmp_path: Path) -> None:
    run = tmp_path / "latent"
    sets = {"data.shards": str(shards), "data.test": str(test_shards), "stage1.max_steps": 4,
            "train.max_steps": 4, "latent.eval_utts": 1000, "latent.max_new_tokens": 8}
    assert run_latent(ROOT / "recipes" / "latent_tiny.yaml", run, sets) == 0
    ev = json.loads((run / "eval.json").read_text())
    out = tmp_path / "tr"
    assert main(["transcribe", str(run), str(shards), "-o", str(out), "--split", "dev"]) == 0
    s = json.loads((out / "transcribe.json").read_text())
    assert s["family"] == "latent" and s["utts"] == ev["dev_utts"] > 0
    assert s["wer"] == ev["wer"] and s["cer"] == ev["cer"]
    hyps = read_hyps(out / "hyps.jsonl")
    _same(hyps, read_hyps(run / "dev_hyps.jsonl"))
    assert all({"logprob", "tokens", "speech_tokens"} <= set(r["scores"]) for r in hyps)
    assert all(r["scores"]["logprob"] <= 0 for r in hyps)
    # the separate test set is scored only, and transcribe gives the same figure
    t = transcribe(run, test_shards, tmp_path / "tt")
    assert ev["test.utts"] == t["utts"] == 8 and ev["test.wer"] == t["wer"]
    _same(read_hyps(tmp_path / "tt" / "hyps.jsonl"), read_hyps(run / "test_hyps.jsonl"))


def test_token_run_transcribes_its_dev_shards_to_its_dev_wer(shards: Path, test_shards: Path,
                                                             tmp_path: Path) -> None:
    run = tmp_path / "token"
    sets = {"data.shards": str(shards), "data.test": str(test_shards), "train.max_steps": 4,
            "eval.asr_utts": 1000, "eval.max_new_tokens": 8, "data.tasks": ["unitlm", "asr"]}
    assert run_token(ROOT / "recipes" / "token_tiny.yaml", run, sets) == 0
    ev = json.loads((run / "eval.json").read_text())
    s = transcribe(run, shards, tmp_path / "tr", split="dev")
    assert s["family"] == "token" and s["utts"] == ev["asr.utts"] == ev["dev_utts"] > 0
    assert s["wer"] == ev["asr.wer"] and s["cer"] == ev["asr.cer"]
    _same(read_hyps(tmp_path / "tr" / "hyps.jsonl"), read_hyps(run / "dev_hyps.jsonl"))
    t = transcribe(run, test_shards, tmp_path / "tt")
    assert ev["test.utts"] == t["utts"] == 8 and ev["test.wer"] == t["wer"]
    every = transcribe(run, shards, tmp_path / "all")
    assert every["utts"] == 30  # no --split: every utterance


def test_missing_stage_and_feature_mismatch_are_named(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "latent"
    sets = {"data.shards": str(shards), "stage1.max_steps": 2, "train.max_steps": 2,
            "latent.eval_utts": 2, "latent.max_new_tokens": 4}
    assert run_latent(ROOT / "recipes" / "latent_tiny.yaml", run, sets) == 0
    no_feats = write_synthetic_shards(tmp_path / "nofeats", num_cuts=4)
    with pytest.raises(InputError, match=r"lacks the group\(s\) \['feats.syn'\]"):
        transcribe(run, no_feats, tmp_path / "o1")
    other_dim = write_synthetic_shards(tmp_path / "dim8", feats_dim=8, num_cuts=4)
    with pytest.raises(ConfigError, match=r"feats\.syn\.dim.*must equal 16"):
        transcribe(run, other_dim, tmp_path / "o2")
    with pytest.raises(InputError, match="is not a finished"):
        transcribe(tmp_path, shards, tmp_path / "o3")


def test_cascade_leaves_out_unreadable_audio_and_says_why(tmp_path: Path) -> None:
    # one missing or non-audio file in a Kaldi dir used to stop the whole cascade decode with an InputError
    import numpy as np
    import soundfile as sf

    from speechtok.models.nbest import Utterance
    from speechtok.trainers.transcribe import readable_audio

    good, garbage = tmp_path / "good.wav", tmp_path / "garbage.wav"
    sf.write(good, np.zeros(1600, np.float32), 16000)
    garbage.write_bytes(b"RIFF\x00\x00garbage")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((1600, 2), np.float32), 16000)
    utts = [Utterance(id=i, path=p, text="a", speaker="s") for i, p in
            [("good", good), ("garbage", garbage), ("missing", tmp_path / "nope.wav"), ("stereo", stereo)]]
    ok, bad = readable_audio(utts)
    assert [u.id for u in ok] == ["good", "stereo"]
    assert sorted(bad) == ["garbage", "missing"]
    assert str(garbage) in bad["garbage"] and "cannot be read" in bad["garbage"]
    assert "missing (no such file)" in bad["missing"]
