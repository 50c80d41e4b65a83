"""A tiny end-to-end comparison on synthetic shards: latent and token families train and are scored,
the text family (no Kaldi dir given) fails and the report records its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.compare import run_compare, write_kaldi_dir
from speechtok.config import parse_sets as _parse_sets
from speechtok.errors import ConfigError
from speechtok.paths import ROOT
from speechtok.trainers.token.synthetic import write_synthetic_shards

RECIPE = """
description: synthetic smoke
data: {shards: SHARDS, feats: feats.syn, units: units.km32, frame_rate: 50.0, kaldi_dir: null,
       train_share: 0.7, split_seed: 0, eval_utts: 6}
llm: {hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, seed: 0}
budget: {steps: 4}
families:
  text: {recipe: ROOT/recipes/cascade_tiny.yaml}
  latent:
    recipe: ROOT/recipes/latent_tiny.yaml
    set: {stage1.max_steps: 4, train.eval_every: 0, train.log_every: 2, latent.max_new_tokens: 8}
  token:
    recipe: ROOT/recipes/token_tiny.yaml
    set: {data.tasks: [unitlm, asr], train.eval_every: 0, train.checkpoint_every: 4, eval.max_new_tokens: 8}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    tmp = tmp_path_factory.mktemp("cmp")
    shards = write_synthetic_shards(tmp / "shards", num_cuts=40, feats_dim=16)
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE.replace("SHARDS", str(shards)).replace("ROOT", str(ROOT)))
    code = run_compare(recipe, tmp / "report", {})
    return tmp / "report", code


def test_two_families_run_and_the_failing_one_is_recorded(report: tuple[Path, int]) -> None:
    out, code = report
    assert code == 1  # the text family failed
    data = json.loads((out / "compare.json").read_text())
    fams = {f["family"]: f for f in data["families"]}
    assert fams["text"]["status"] == "failed" and "kaldi_dir" in fams["text"]["error"]
    for name in ("latent", "token"):
        f = fams[name]
        assert f["status"] == "ok", f.get("traceback")
        assert 0.0 <= f["wer"] and 0.0 <= f["cer"]
        assert f["eval_utts"] == 6 and f["eval_audio_s"] > 0
        assert f["llm_tokens_per_s"] > 0
        assert 0 < f["trainable_params"] <= f["total_params"]
        assert f["overrides"]["llm.hidden_size"] == 32
    # frame stacking by 2 of 50 Hz features: 25 adapter tokens per second
    assert fams["latent"]["llm_tokens_per_s"] == pytest.approx(25.0, rel=0.05)
    assert fams["token"]["can_generate_speech"] and "not measured" in fams["token"]["speech_intelligibility"]
    md = (out / "compare.md").read_text()
    assert "failed" in md and (out / "wer.png").is_file()
    # the split is proved: held-out speakers listed once, each family's scored ids checked, test-only WER
    meta = data["meta"]
    assert meta["heldout"]["dev_speakers"] and meta["heldout"]["test_speakers"]
    assert "Held-out speakers" in md and "| test WER % |" in md
    assert meta["title"].startswith("shards, ") and "40 utterances" in meta["data"]
    for name in ("latent", "token"):
        f = fams[name]
        assert f["scored_ids_checked"] == 6 and f["dev_utts"] + f["test_utts"] == 6
        assert f["test_utts"] == 0 or 0.0 <= f["test_wer"]


def test_write_kaldi_dir_from_a_demo_manifest(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    (corpus / "a").mkdir(parents=True)
    (corpus / "manifest.jsonl").write_text(
        json.dumps({"id": "a_1", "audio": "a/a_1.wav", "text": "hi there", "speaker": "a"}) + "\n")
    kd = write_kaldi_dir(corpus, tmp_path / "k")
    assert (kd / "wav.scp").read_text() == f"a_1 {(corpus / 'a/a_1.wav').resolve()}\n"
    assert (kd / "text").read_text() == "a_1 hi there\n"
    assert (kd / "utt2spk").read_text() == "a_1 a\n"


def test_cli_sets_parse_and_reject_garbage() -> None:
    assert _parse_sets(["llm.hidden_size=64", "a.b=x=y"]) == {"llm.hidden_size": 64, "a.b": "x=y"}
    with pytest.raises(ConfigError):
        _parse_sets(["novalue"])


def test_rerun_with_two_workers_reproduces_the_numbers(report: tuple[Path, int], tmp_path: Path) -> None:
    """The families run in two spawned processes at once give the numbers of one after another."""
    out, _ = report
    first = {f["family"]: f for f in json.loads((out / "compare.json").read_text())["families"]}
    recipe = out.parent / "recipe.yaml"
    code = run_compare(recipe, tmp_path / "again", {"families.text.enabled": False, "workers": 2})
    assert code == 0  # the skipped family is not a failure
    data = json.loads((tmp_path / "again" / "compare.json").read_text())
    assert data["meta"]["workers"] == 2 and any("workers=2" in c for c in data["meta"]["caveats"])
    again = {f["family"]: f for f in data["families"]}
    assert again["text"]["status"] == "skipped"
    for name in ("latent", "token"):
        for key in ("wer", "cer", "llm_tokens_per_s", "trainable_params", "total_params"):
            assert again[name][key] == first[name][key], (name, key)
