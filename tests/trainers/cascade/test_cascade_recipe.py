"""The cascade recipe, its overrides, and `speechtok train cascade` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.config import apply_sets
from speechtok.errors import ConfigError
from speechtok.manifests.splits import split_of
from speechtok.models.checkpoint import latest_checkpoint
from speechtok.models.nbest import Hypothesis, NBestList, write_jsonl
from speechtok.paths import ROOT
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.cascade.recipe import (
    OLD_KEYS,
    CascadeRecipe,
    load_recipe,
    read_run_recipe,
    recipe_from_dict,
    upgrade_old_keys,
)
from speechtok.trainers.loop import read_metrics

TINY = ROOT / "recipes" / "cascade_tiny.yaml"
FULL = ROOT / "recipes" / "cascade_speechocean.yaml"


def test_recipes_load_and_overrides_apply(speechocean_dir: Path, whisper_ct2_dir: Path) -> None:
    recipe, raw = load_recipe(FULL)
    assert recipe.nbest.num_hypotheses == 5 and recipe.data.kaldi_dir == speechocean_dir
    assert recipe.data.split_ratios == (0.7, 0.15, 0.15)
    r2, _ = load_recipe(TINY, {"ger.train.max_steps": 7, "rescoring.am_norm": "token",
                               "text_lm.train.max_steps": 3, "text_lm.llm.kind": "whisper_decoder",
                               "ger.llm.mode": "lora", "ger.train.device": "cuda"})
    assert (r2.ger.train.max_steps, r2.rescoring.am_norm, r2.text_lm.train.max_steps) == (7, "token", 3)
    assert (r2.text_lm.llm.kind, r2.ger.llm.mode) == ("whisper_decoder", "lora")
    # the recipe's device and seed fill the training sections, unless they set their own
    assert (r2.text_lm.train.device, r2.ger.train.device) == ("cpu", "cuda")
    r3, _ = load_recipe(TINY, {"device": "cuda:1", "seed": 5})
    assert (r3.text_lm.train.device, r3.ger.train.device, r3.text_lm.train.seed, r3.ger.train.seed) == \
        ("cuda:1", "cuda:1", 5, 5)
    assert (recipe.text_lm.train.lr, recipe.text_lm.train.min_lr, recipe.ger.batching.max_batch) == (0.003, 0.0003, 16)


def test_bad_recipes_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.kaldi_dir"):
        recipe_from_dict({"data": {"kaldi_dir": str(tmp_path)}})
    with pytest.raises(ConfigError, match="bogus"):
        recipe_from_dict({"data": {"kaldi_dir": str(tmp_path)}, "bogus": 1})
    raw = apply_sets({"ger": {"enabled": True}}, {"ger.llm.mode": "lora", "data.split_ratios": [1, 2]}, CascadeRecipe)
    assert raw == {"ger": {"enabled": True, "llm": {"mode": "lora"}}, "data": {"split_ratios": [1, 2]}}
    with pytest.raises(ConfigError, match="ger has no `steps`"):  # the old flat keys are gone
        apply_sets({}, {"ger.steps": 1}, CascadeRecipe)
    with pytest.raises(ConfigError, match="min_lr"):  # one LoopConfig rule for every family
        recipe_from_dict({"data": {"kaldi_dir": str(tmp_path)}, "ger": {"train": {"max_steps": 1, "lr": 1e-5}}})
    with pytest.raises(ConfigError, match="has no `new`"):
        apply_sets({}, {"new.key": 1}, CascadeRecipe)
    with pytest.raises(ConfigError, match="not a section"):
        apply_sets({"seed": 0}, {"seed.x": 1}, CascadeRecipe)


#: A cascade run's recipe as written before the config layer (stop 23), and the same with the new keys.
OLD_RUN_SECTIONS = {
    "text_lm": {"vocab_size": 300, "kind": "llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                "intermediate_size": 64, "max_length": 128, "steps": 10, "batch_size": 8, "learning_rate": 0.01,
                "warmup_steps": 2, "weight_decay": 0.01, "seed": 3, "device": "cpu"},
    "ger": {"enabled": True, "mode": "lora", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "prompt": "h2t",
            "steps": 5, "batch_size": 4, "learning_rate": 1e-4, "warmup_steps": 1, "weight_decay": 0.0,
            "train_on_inputs": True, "max_new_tokens": 8, "infer_batch_size": 2},
}
NEW_RUN_SECTIONS = {
    "text_lm": {"vocab_size": 300,
                "llm": {"kind": "llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                        "max_positions": 128},
                "train": {"max_steps": 10, "lr": 0.01, "min_lr": 0.001, "warmup_steps": 2, "weight_decay": 0.01,
                          "seed": 3, "device": "cpu"},
                "batching": {"max_batch": 8}},
    "ger": {"enabled": True, "prompt": "h2t", "train_on_inputs": True, "max_new_tokens": 8, "infer_batch_size": 2,
            "llm": {"mode": "lora", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.05},
            "train": {"max_steps": 5, "lr": 1e-4, "min_lr": 1e-5, "warmup_steps": 1, "weight_decay": 0.0},
            "batching": {"max_batch": 4}},
}


def _run_recipe(tmp_path: Path, name: str, sections: dict[str, object]) -> Path:
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir(exist_ok=True)
    (kaldi / "wav.scp").write_text("u1 /x/u1.wav\n")
    run = tmp_path / name
    run.mkdir()
    raw = {"data": {"kaldi_dir": str(kaldi)}, "nbest": {"decoder": "sphinx"}, "device": "cpu", "seed": 0, **sections}
    (run / "recipe.resolved.json").write_text(json.dumps(raw))
    return run / "recipe.resolved.json"


def test_a_run_written_before_the_config_layer_reads_as_with_the_new_keys(tmp_path: Path) -> None:
    old = read_run_recipe(_run_recipe(tmp_path, "old", OLD_RUN_SECTIONS))
    new = read_run_recipe(_run_recipe(tmp_path, "new", NEW_RUN_SECTIONS))
    assert old == new
    assert (old.ger.llm.mode, old.ger.train.max_steps, old.ger.train.min_lr, old.text_lm.llm.max_positions,
            old.text_lm.batching.max_batch, old.text_lm.train.seed) == ("lora", 5, 1e-5, 128, 8, 3)
    assert set(OLD_KEYS["text_lm"]) | {"vocab_size"} == set(OLD_RUN_SECTIONS["text_lm"])  # every old key
    assert set(OLD_KEYS["ger"]) - set(OLD_RUN_SECTIONS["ger"]) == {"base_model", "seed", "device"}
    assert upgrade_old_keys(NEW_RUN_SECTIONS, "r") == NEW_RUN_SECTIONS  # new keys pass unchanged


def test_old_run_keys_that_cannot_be_upgraded_are_refused(tmp_path: Path) -> None:
    both = {"ger": {"steps": 5, "train": {"max_steps": 6}}}
    with pytest.raises(ConfigError, match=r"`ger.steps` must agree with `ger.train.max_steps`=6.*but is 5"):
        read_run_recipe(_run_recipe(tmp_path, "both", both))
    assert upgrade_old_keys({"ger": {"steps": 5, "train": {"max_steps": 5}}}, "r") == \
        {"ger": {"train": {"max_steps": 5}}}
    with pytest.raises(ConfigError, match="text_lm has no `bogus`"):  # not an old key either: named as ever
        read_run_recipe(_run_recipe(tmp_path, "bogus", {"text_lm": {"steps": 3, "bogus": 1}}))
    with pytest.raises(ConfigError, match="`ger.llm` must be a mapping"):
        upgrade_old_keys({"ger": {"mode": "full", "llm": "x"}}, "r")


def _tiny_corpus(speechocean_dir: Path, out: Path) -> list[str]:
    """2 speakers x 1 utterance per split, as a Kaldi dir with absolute paths."""
    picked: dict[str, list] = {"train": [], "dev": [], "test": []}
    seen: set[str] = set()
    for u in read_kaldi_dir(speechocean_dir):
        s = split_of(u.speaker, (0.7, 0.15, 0.15), 0)
        if u.speaker not in seen and len(picked[s]) < 2:
            picked[s].append(u)
            seen.add(u.speaker)
    utts = [u for s in ("train", "dev", "test") for u in picked[s]]
    out.mkdir()
    (out / "wav.scp").write_text("".join(f"{u.id} {u.path}\n" for u in utts))
    (out / "text").write_text("".join(f"{u.id} {u.text}\n" for u in utts))
    (out / "utt2spk").write_text("".join(f"{u.id} {u.speaker}\n" for u in utts))
    return [u.id for u in utts]


def test_train_cascade_cli_end_to_end_from_cached_nbest(
    speechocean_dir: Path, whisper_ct2_dir: Path, tmp_path: Path
) -> None:
    from speechtok.cli import main

    ids = _tiny_corpus(speechocean_dir, tmp_path / "kaldi")
    refs = {u.id: u.text or "" for u in read_kaldi_dir(tmp_path / "kaldi")}
    # A cache with every utterance: the run reads it instead of decoding.
    lists = []
    for uid in ids:
        ref = refs[uid].lower()
        texts = [ref.replace("e", "a", 1) + ".", ref.capitalize(), ref + " uh"]
        hyps = tuple(Hypothesis(text=t, rank=r, am_score=-1.0 - r, am_score_norm=-0.3 - r, num_tokens=4)
                     for r, t in enumerate(texts))
        lists.append(NBestList(id=uid, source="whisper", hyps=hyps, reference=refs[uid]))
    write_jsonl(tmp_path / "cache.jsonl", lists)
    run = tmp_path / "run"
    args = ["train", "cascade", str(TINY), "-o", str(run), "--set", f"data.kaldi_dir={tmp_path / 'kaldi'}",
            "--set", f"nbest.cache={tmp_path / 'cache.jsonl'}", "--set", "rescoring.ngram_baseline=false"]
    assert main(args) == 0
    res = json.loads((run / "results.json").read_text())
    for s in ("dev", "test"):
        r = res["results"][s]
        assert set(r) == {"1best", "oracle", "rescored_lm", "ger"}
        assert r["oracle"] == 0.0  # the reference is the 2nd hypothesis
        assert r["oracle"] <= r["1best"] and r["oracle"] <= r["rescored_lm"]
    assert res["utterances"] == {"train": 2, "dev": 2, "test": 2}
    assert (run / "wer_vs_lambda.png").stat().st_size > 1000
    hp = json.loads((run / "hyporadise" / "test.json").read_text())
    assert len(hp) == 2 and len(hp[0]["input"]) == 3
    split_info = json.loads((run / "splits.json").read_text())
    assert not set(split_info["speakers"]["dev"]) & set(split_info["speakers"]["test"])
    assert "| oracle |" in (run / "results.md").read_text()
    # both LMs trained on the shared loop: its log, and a final checkpoint a rerun resumes from
    assert [r["step"] for r in read_metrics(run / "text_lm") if "loss" in r] == list(range(10))
    assert [r["step"] for r in read_metrics(run / "ger") if "loss" in r] == list(range(5))
    assert latest_checkpoint(run / "ger") is not None and latest_checkpoint(run / "text_lm") is not None
    # a rerun into the same directory resumes both from their final checkpoints: no step again, same results
    assert main(args) == 0
    assert json.loads((run / "results.json").read_text())["results"] == res["results"]
    for lm, steps in (("text_lm", 10), ("ger", 5)):
        assert (run / lm / "metrics.jsonl").read_text().splitlines()[-1] == json.dumps({"start": steps})
    from speechtok.trainers.cascade.nbest_shards import read_nbest_shards

    assert [nb.id for nb in read_nbest_shards(run, name="whisper")] == ids


def test_tiny_recipe_with_real_whisper_decoding(speechocean_dir: Path, whisper_ct2_dir: Path, tmp_path: Path) -> None:
    from speechtok.trainers.cascade import run_recipe

    assert run_recipe(TINY, tmp_path / "run", {}) == 0
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    for s in ("dev", "test"):
        assert res["results"][s]["oracle"] <= res["results"][s]["1best"]
    assert res["results"]["test"]["1best"] < 1.0  # real ASR on real speech
