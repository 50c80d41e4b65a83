"""TTS through the token LM: text -> fbank k-means units -> CentroidVocoder -> Whisper -> WER."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from speechtok.manifests.tone_corpus import write_tone_corpus
from speechtok.paths import ROOT
from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.token import run_recipe
from speechtok.trainers.token.evaluate import greedy_generate


def _shards(tmp: Path) -> Path:
    corpus = write_tone_corpus(tmp / "corpus", 14, stem="u", text=lambda i: f"tone number {i}",
                               speakers=4)
    recipe = recipe_from_dict({
        "ingest": {"source": str(corpus), "sample_rate": 16000, "options": {"speaker_from": "top_dir"}},
        "shards": {"cuts_per_shard": 7},
        "stages": [{"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
                   {"type": "kmeans_units", "name": "km16", "input": "feats.fbank",
                    "config": {"k": 16, "iterations": 4, "frame_budget": 5000}}]})
    run(recipe, tmp / "shards", RunOptions(executor="inline", progress=False))
    return tmp / "shards"


def test_tts_eval_scores_generated_and_oracle_audio(tmp_path: Path, whisper_ct2_dir: Path) -> None:
    shards = _shards(tmp_path)
    sets = {"data.shards": str(shards), "data.units": "units.km16", "data.tasks": ["unitlm", "asr", "tts"],
            "data.frame_rate": 100.0, "train.max_steps": 6, "train.eval_every": 0, "train.checkpoint_every": 6,
            "eval.asr_utts": 2, "eval.max_new_tokens": 8, "eval.tts_utts": 3,
            "eval.tts_asr_model": str(whisper_ct2_dir)}
    assert run_recipe(ROOT / "recipes" / "token_tiny.yaml", tmp_path / "run", sets) == 0
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["tts.utts"] == 3 and len(ev["tts.examples"]) == 3
    for key in ("tts.wer", "tts.cer", "tts.oracle_wer", "tts.oracle_cer"):
        assert ev[key] >= 0.0, key
    assert 0.0 <= ev["tts.eos_rate"] <= 1.0 and ev["tts.units_per_utt"] >= 0


def test_sampled_generation_is_seeded_and_stays_in_range() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    spec = VocabSpec(text_size=10, units={"k": 6})
    model = LlamaForCausalLM(LlamaConfig(vocab_size=spec.size, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32))
    allowed = torch.zeros(spec.size, dtype=torch.bool)
    r = spec.range("units.k")
    allowed[r.start:r.stop] = True
    prompt = np.array([1, 2, 3])

    def sample(seed: int) -> list[int]:
        return greedy_generate(model, prompt, allowed, stop_id=-1, max_new_tokens=12, top_k=4,
                               generator=torch.Generator().manual_seed(seed))

    a, b = sample(0), sample(0)
    assert a == b and len(a) == 12 and all(r.start <= i < r.stop for i in a)
    assert any(sample(s) != a for s in range(1, 6))  # sampling, not argmax
    assert greedy_generate(model, prompt, allowed, -1, 5) == greedy_generate(model, prompt, allowed, -1, 5)
