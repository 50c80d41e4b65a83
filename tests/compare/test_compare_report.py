"""Unit tests of the comparison recipe, the shared split and the report writer (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.compare.families import LATENT, TEXT, TOKEN
from speechtok.compare.recipe import load_compare_recipe
from speechtok.compare.report import CHARTS, markdown, write_report
from speechtok.errors import ConfigError
from speechtok.paths import ROOT


def _records() -> list[dict]:
    ok = {"family": "text", "status": "ok", "system": "ger", "wer": 0.25, "cer": 0.1, "llm_tokens_per_s": 12.5,
          "trainable_params": 1000, "total_params": 39_001_000, "train_s": 3.0, "rtf": 0.2,
          "can_generate_speech": False, "eval_utts": 10, "data_needed": "transcripts",
          "wer_by_system": {"1best": 0.3, "ger": 0.25}}
    tok = {**ok, "family": "token", "wer": 0.9, "can_generate_speech": True,
           "speech_intelligibility": "not measured: no vocoder", "wer_by_system": None}
    bad = {"family": "latent", "status": "failed", "error": "InputError: `shards` boom"}
    return [ok, bad, tok]


def test_report_writes_every_number_and_the_failure(tmp_path: Path) -> None:
    meta = {"description": "unit", "recipe": "r.yaml", "llm": {"hidden_size": 8}, "steps": 3,
            "train_share": 0.7, "split_seed": 0, "wall_s": 1.0, "caveats": ["tiny"]}
    paths = write_report(tmp_path, meta, _records())
    data = json.loads(paths["json"].read_text())
    assert [f["family"] for f in data["families"]] == ["text", "latent", "token"]
    assert data["families"][0]["wer"] == 0.25
    md = paths["md"].read_text()
    assert "| text | scratch | ger | ok | - | - | 25.0 | 10.0 |" in md  # test WER, dev WER, dev+test WER, CER
    assert "InputError: `shards` boom" in md
    assert "not measured: no vocoder" in md
    for _, name, _ in CHARTS:
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_markdown_renders_missing_values_as_dash() -> None:
    md = markdown({"caveats": []}, [{"family": "token", "status": "skipped", "recipe": "x"}])
    assert "| token | scratch | - | skipped | - | - |" in md


def test_recipes_in_the_repo_load_with_overrides() -> None:
    demo, _ = load_compare_recipe(ROOT / "recipes/compare_demo.yaml", {"data.shards": "/tmp/x",
                                                                       "families.text.set.ger.train.max_steps": 7,
                                                                       "llm.hidden_size": 32})
    assert demo.llm["hidden_size"] == 32 and str(demo.data.shards) == "/tmp/x"
    text = next(f for f in demo.families if f.name == "text")
    assert text.sets["ger.train.max_steps"] == 7 and text.sets["text_lm.vocab_size"] == 300
    assert [f.name for f in demo.families] == ["text", "latent", "token"]  # latent_memory left out: not run
    so, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {})
    assert [f.name for f in so.families] == ["text", "latent", "latent_memory", "token"]


def test_backbone_and_budget_are_the_same_for_every_family() -> None:
    r, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {"budget.steps": 17})
    t, la, to = TEXT.overrides(r), LATENT.overrides(r), TOKEN.overrides(r)
    for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
        assert t[f"text_lm.llm.{k}"] == la[f"llm.{k}"] == to[f"llm.{k}"] == r.llm[k]
    assert t["text_lm.train.max_steps"] == t["ger.train.max_steps"] == 17
    assert la["train.max_steps"] == to["train.max_steps"] == 17
    assert t["seed"] == la["train.seed"] == to["train.seed"]
    ratios = t["data.split_ratios"]
    assert ratios[0] == pytest.approx(r.data.train_share) and sum(ratios) == pytest.approx(1.0)


def test_cascade_and_shard_splits_hold_out_the_same_speakers() -> None:
    from speechtok.manifests.splits import split_of as cascade_split  # the rule the cascade splits by
    from speechtok.trainers.token.recipe import SplitConfig

    r, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {})
    ratios = tuple(TEXT.overrides(r)["data.split_ratios"])
    split = SplitConfig(train=r.data.train_share, seed=r.data.split_seed)
    speakers = [f"spk{i:04d}" for i in range(500)]
    held_a = {s for s in speakers if cascade_split(s, ratios, r.data.split_seed) != "train"}
    held_b = {s for s in speakers if not split.is_train(s)}
    assert held_a == held_b and 100 < len(held_a) < 250


def test_backbones_parse_and_change_only_the_llm_and_its_rates(tmp_path: Path) -> None:
    from speechtok.compare.families import backbone_overrides

    so, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {})
    assert so.backbones == ("scratch",)
    both, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml",
                                  {"backbone": ["scratch", "whisper_decoder"]})
    assert both.backbones == ("scratch", "whisper_decoder")
    demo, _ = load_compare_recipe(ROOT / "recipes/compare_demo.yaml", {"data.shards": "/tmp/x"})
    assert demo.backbones == ("scratch", "whisper_decoder")
    assert backbone_overrides("latent", "scratch") == {}
    assert backbone_overrides("latent", "whisper_decoder")["llm.kind"] == "whisper_decoder"
    assert backbone_overrides("token", "whisper_decoder")["llm.kind"] == "whisper_decoder"
    assert backbone_overrides("text", "whisper_decoder")["text_lm.llm.kind"] == "whisper_decoder"
    md = markdown({"caveats": []}, [{"family": "latent", "backbone": "whisper_decoder", "status": "ok", "wer": 0.5}])
    assert "| latent | whisper_decoder | - | ok | - | - | 50.0 |" in md


@pytest.mark.parametrize(("key", "value"), [("data.train_share", 1.5), ("budget.steps", 0),
                                            ("llm.num_heads", 3), ("backbone", "gpt2"),
                                            ("backbone", ["scratch", "scratch"]), ("data.nosuch", 1)])
def test_bad_settings_are_config_errors(key: str, value: str) -> None:
    with pytest.raises(ConfigError):
        load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {key: value})


def test_missing_recipe_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_compare_recipe(tmp_path / "nope.yaml", {})
    assert str(tmp_path / "nope.yaml") in str(e.value)


def test_read_text_scores_dev_plus_test_with_the_dev_chosen_system(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from speechtok.compare.families import WHISPER_TINY_PARAMS
    from speechtok.trainers.llm import build_char_tokenizer

    kaldi, run = tmp_path / "kaldi", tmp_path / "run"
    kaldi.mkdir()
    run.mkdir()
    utts = {"a": ("dev", "one two", "one two"), "b": ("test", "three four five six", "three for five six"),
            "c": ("train", "seven", "seven")}
    for uid in utts:
        sf.write(kaldi / f"{uid}.wav", np.zeros(16000 * 2, np.float32), 16000)
    (kaldi / "wav.scp").write_text("".join(f"{u} {u}.wav\n" for u in utts))
    (kaldi / "text").write_text("".join(f"{u} {r}\n" for u, (_, r, _) in utts.items()))
    (kaldi / "utt2spk").write_text("".join(f"{u} {u}\n" for u in utts))
    for split in ("dev", "test"):
        with open(run / f"ger_{split}.jsonl", "w") as f:
            for u, (s, ref, best) in utts.items():
                if s == split:
                    f.write(json.dumps({"id": u, "reference": ref, "best": best, "ger": ref}) + "\n")
    with open(run / "nbest.jsonl", "w") as f:
        for u, (_, _, best) in utts.items():
            f.write(json.dumps({"id": u, "hyps": [{"text": best}, {"text": best + " x"}]}) + "\n")
    build_char_tokenizer(["abcdefghijklmnopqrstuvwxyz "]).save_pretrained(str(run / "text_lm"))
    res = {"dev": {"1best": 0.0, "rescored_lm": 0.0, "ger": 0.5},
           "test": {"1best": 0.25, "rescored_lm": 0.25, "ger": 0.0}}
    (run / "results.json").write_text(json.dumps({
        "results": res, "text_lm": {"num_parameters": 1234},
        "timings": {"decode_wall_s": 3.0, "rescoring_wall_s": 0.5, "text_lm_wall_s": 1.0, "ger_train_wall_s": 2.0}}))
    r, _ = load_compare_recipe(ROOT / "recipes/compare_speechocean.yaml", {"data.kaldi_dir": str(kaldi)})
    rec = TEXT.read(run, r)
    assert rec["system"] == "rescored_lm"  # chosen on dev, although GER is better on test
    assert rec["wer"] == pytest.approx(1 / 6)  # 0 errors of 2 dev words + 1 of 4 test words
    assert rec["wer_1best_check"] == pytest.approx(1 / 6)
    assert rec["eval_utts"] == 2 and rec["eval_audio_s"] == pytest.approx(4.0)
    # decoding (2/3 of 3 s is held-out audio) + rescoring, over 4 s of audio
    assert rec["rtf"] == pytest.approx((2.0 + 0.5) / 4.0)
    assert rec["train_s"] == pytest.approx(3.0)
    assert rec["total_params"] == 1234 + WHISPER_TINY_PARAMS
    hyp_chars = 2 * len("one two") + 2 + 2 * len("three for five six") + 2
    assert rec["llm_tokens_per_s"] == pytest.approx(hyp_chars / 4.0)

    # a run with `ger.enabled: false` writes no ger_*.jsonl: the scored utterances come from its
    # HyPoradise files (same reference and 1-best), and the record is the same but for GER
    (run / "hyporadise").mkdir()
    for split in ("dev", "test"):
        (run / f"ger_{split}.jsonl").unlink()
        (run / "hyporadise" / f"{split}.json").write_text(json.dumps([
            {"id": u, "input": [best, best + " x"], "output": ref, "input1": best, "input2": best + " x"}
            for u, (s, ref, best) in utts.items() if s == split]))
    for split in ("dev", "test"):
        del res[split]["ger"]
    (run / "results.json").write_text(json.dumps({
        "results": res, "text_lm": {"pretrained": "whisper_decoder", "num_parameters": 1234},
        "timings": {"decode_wall_s": 3.0, "rescoring_wall_s": 0.5, "text_lm_wall_s": 1.0}}))
    no_ger = TEXT.read(run, r)
    # a pretrained LM rescoring as it is: nothing trained, its parameters still counted in the total
    assert no_ger["trainable_params"] == 0 and no_ger["total_params"] == 1234 + WHISPER_TINY_PARAMS
    assert no_ger["system"] == "rescored_lm" and no_ger["wer"] == pytest.approx(1 / 6)
    assert no_ger["eval_utts"] == 2 and no_ger["wer_1best_check"] == pytest.approx(1 / 6)
    assert no_ger["llm_tokens_per_s"] == rec["llm_tokens_per_s"] and no_ger["train_s"] == pytest.approx(1.0)
