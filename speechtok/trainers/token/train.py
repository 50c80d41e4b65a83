"""`speechtok train token RECIPE.yaml -o RUN`: a speech-token LM on units (and text) from shards.

Recipe sections (see `recipes/token_speechocean.yaml`): `data` (`TokenDataConfig`), `llm`
(`LLMConfig`), `batching` (`BatchingConfig`), `train` (`LoopConfig`), `eval` (`TokenEvalConfig`).

Writes to RUN: `recipe.json` (resolved), `vocab_spec.json`, `tokenizer/`, `metrics.jsonl`,
`checkpoints/`, `model/` (Hugging Face `save_pretrained`, safetensors) and `eval.json` with
per-kind perplexities, the unigram baseline, ASR WER/CER (per utterance in `dev_hyps.jsonl`) and
the training time; with `data.test`, the separate test set's `test.wer` (`test_hyps.jsonl`). Rerunning the
same command on a RUN with checkpoints resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok import atomic
from speechtok.config import build, expand, load_recipe_dict, to_json
from speechtok.errors import InputError
from speechtok.features.fbank import FbankConfig
from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.kmeans import KMeansModel
from speechtok.tokenizers.unit_vocoder import CentroidVocoder
from speechtok.tokenizers.units import dedup
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.data import BatchingConfig, BatchLoader
from speechtok.trainers.hyps import score_hyps, test_set_report, write_hyps
from speechtok.trainers.llm import (
    LLMConfig,
    build_llm,
    causal_lm_loss,
    count_trainable,
    load_tokenizer,
    position_limit,
    text_codec,
)
from speechtok.trainers.loop import LoopConfig, train
from speechtok.trainers.mixing import MixLoader, parse_sources
from speechtok.trainers.run_data import check_test_set
from speechtok.trainers.token.dataset import (
    SequenceSet,
    collate_sequences,
    load_source_utterances,
    load_utterances,
    split_utterances,
)
from speechtok.trainers.token.decode import asr_records, shard_utterances
from speechtok.trainers.token.evaluate import perplexity_by_kind, tts_eval, unigram_perplexity
from speechtok.trainers.token.recipe import SplitConfig, TokenDataConfig, TokenEvalConfig, dump_json

#: The sections of a token recipe and their config classes (what `--set` may name).
SCHEMA: dict[str, type] = {"data": TokenDataConfig, "llm": LLMConfig, "batching": BatchingConfig,
                           "train": LoopConfig, "eval": TokenEvalConfig}


def run_recipe(recipe_path: Path, out_dir: Path, sets: Mapping[str, Any]) -> int:
    """Entry point of ``speechtok train token`` (`sets`: `speechtok.config.parse_sets`)."""
    raw = load_recipe_dict(recipe_path, sets, SCHEMA, what="token recipe")
    data_cfg = build(TokenDataConfig, raw.get("data"), "data")
    if data_cfg.sources and not data_cfg.shards:  # decode/transcribe read `shards`: the first source
        data_cfg = replace(data_cfg, shards=parse_sources(data_cfg.sources)[0].shards)
    llm_cfg = build(LLMConfig, raw.get("llm"), "llm")
    batching = build(BatchingConfig, raw.get("batching"), "batching")
    loop_cfg = build(LoopConfig, raw.get("train"), "train")
    eval_cfg = build(TokenEvalConfig, raw.get("eval"), "eval")
    split = build(SplitConfig, data_cfg.split, "data.split")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_json(out / "recipe.json", {"data": to_json(data_cfg), "llm": to_json(llm_cfg), "batching": to_json(batching),
                                    "train": to_json(loop_cfg), "eval": to_json(eval_cfg)})

    if data_cfg.test:
        check_test_set(data_cfg.test, [data_cfg.units], trained_on=data_cfg.shards)
    if data_cfg.sources:
        per_source, unit_vocab = load_source_utterances(data_cfg)
        parts = [([u for u in us if split.is_train(u.speaker)], [u for u in us if not split.is_train(u.speaker)])
                 for us in per_source]
        for i, (tr, _) in enumerate(parts):
            if not tr:
                raise InputError(f"data.sources[{i}]", "has no training utterance after the speaker split")
        train_parts = [tr for tr, _ in parts]
        train_utts = [u for tr in train_parts for u in tr]
        dev_utts = [u for _, dv in parts for u in dv]
        if not dev_utts:
            raise InputError("split", "no dev utterance in any source; change split.train or split.seed")
    else:
        utts, unit_vocab = load_utterances(data_cfg)
        train_utts, dev_utts = split_utterances(utts, split)
        train_parts = [train_utts]
    # -> train/dev utterances, disjoint by speaker
    tokenizer = load_tokenizer(llm_cfg, (u.text for u in train_utts))
    name = data_cfg.units.split(".", 1)[1]
    spec = VocabSpec.for_tokenizer(tokenizer, units={name: unit_vocab}, pad_to_multiple_of=8)
    spec.add_to_tokenizer(tokenizer)
    spec.save(out)
    with atomic.atomic_dir(out / "tokenizer", overwrite=True) as tmp:
        tokenizer.save_pretrained(str(tmp))

    encode, decode = text_codec(tokenizer)  # generation never leaves the tokenizer's ids (`allowed_ids`)
    train_sets = [SequenceSet(tr, data_cfg.tasks, spec, data_cfg, encode, seed=loop_cfg.seed + 1000 * i)
                  for i, tr in enumerate(train_parts)]
    dev_set = SequenceSet(dev_utts, data_cfg.tasks, spec, data_cfg, encode, seed=loop_cfg.seed + 1)
    torch.manual_seed(loop_cfg.seed)  # the initial weights are part of the run's seed
    model = build_llm(llm_cfg, spec.embedding_rows)
    # a sequence longer than the model's positions is left out, counted (Whisper's decoder has 448:
    # a longer one ended in an IndexError inside the embedding)
    limit = position_limit(model)
    batching = replace(batching, max_length=min(batching.max_length or limit, limit)) if limit else batching
    dev_seqs = [dev_set[i] for i in range(len(dev_set))]
    too_long = [sum(int((t.lengths() > limit).sum()) for t in train_sets),
                sum(len(s) > limit for s in dev_seqs)] if limit else [0, 0]
    if limit and any(too_long):
        dev_seqs = [s for s in dev_seqs if len(s) <= limit]
        print(f"speechtok train: left out {too_long[0]} training and {too_long[1]} dev sequences longer than "
              f"the model's {limit} learned positions", flush=True)
    # -> items: TokenSequence per (utterance, task); one set per source when mixing
    loader: BatchLoader | MixLoader
    if data_cfg.sources:
        mix = parse_sources(data_cfg.sources)
        loader = MixLoader(train_sets, [t.lengths() for t in train_sets], collate_sequences, batching,
                           [m.weight for m in mix], [m.repeat for m in mix])
    else:
        loader = BatchLoader(train_sets[0], train_sets[0].lengths(), collate_sequences, batching)

    def eval_fn(m: Any) -> dict[str, float]:
        res = perplexity_by_kind(m, dev_seqs[:256], spec)
        return {k: v for k, v in res.items() if k.startswith("ppl.")}

    t0 = time.perf_counter()
    result = train(model, causal_lm_loss, loader, loop_cfg, out, eval_fn=eval_fn, extra={"recipe": str(recipe_path)})
    train_s = time.perf_counter() - t0

    report: dict[str, Any] = {
        "train_utts": len(train_utts), "dev_utts": len(dev_utts),
        "dev_speakers": sorted({u.speaker for u in dev_utts}),
        "train_sequences": sum(len(t) for t in train_sets), "trainable_params": count_trainable(model),
        "steps": result.step, "train_wall_s": train_s, "final_train_loss": result.losses.get(result.step - 1),
        "vocab_size": spec.size, "vocab_checksum": spec.checksum(),
        "corpora": ([m["shards"] for m in data_cfg.sources] if data_cfg.sources
                    else [data_cfg.shards, *data_cfg.more_shards]),
        "mix_weights": [float(m.get("weight", 1.0)) for m in data_cfg.sources] or None,
    }
    report.update(perplexity_by_kind(model, dev_seqs, spec))

    def units_of(u: Any) -> Any:
        return dedup(u.units)[0] if data_cfg.dedup else u.units

    report["ppl.unigram.units"] = unigram_perplexity([units_of(u) for u in train_utts],
                                                     [units_of(u) for u in dev_utts], unit_vocab)
    if "asr" in data_cfg.tasks and eval_cfg.asr_utts:
        records = asr_records(model, spec, name, dev_utts[: eval_cfg.asr_utts], decode,
                              dedup=data_cfg.dedup, max_new_tokens=eval_cfg.max_new_tokens)
        write_hyps(out / "dev_hyps.jsonl", records)  # what `speechtok transcribe` writes, per utterance
        scored = score_hyps(records)
        report["asr.cer"], report["asr.wer"], report["asr.utts"] = scored["cer"], scored["wer"], len(records)
        report["asr.examples"] = [{"ref": r["reference"], "hyp": r["hypothesis"]} for r in records[:10]]
        if data_cfg.test:
            test_utts = shard_utterances(data_cfg.test, data_cfg.units)
            test_records = asr_records(model, spec, name, test_utts, decode, dedup=data_cfg.dedup,
                                       max_new_tokens=eval_cfg.max_new_tokens)
            report.update(test_set_report(out / "test_hyps.jsonl", test_records, data_cfg.test))
    if "tts" in data_cfg.tasks and eval_cfg.tts_utts:
        t1 = time.perf_counter()
        vocoder = _vocoder(data_cfg, eval_cfg, train_utts, unit_vocab)
        report.update(tts_eval(model, spec, name, dev_utts[: eval_cfg.tts_utts], encode,
                               vocoder, _transcriber(eval_cfg, vocoder.fbank.sampling_rate),
                               dedup=data_cfg.dedup, top_k=eval_cfg.tts_top_k,
                               temperature=eval_cfg.tts_temperature, seed=eval_cfg.tts_seed))
        report["tts.eval_wall_s"] = time.perf_counter() - t1
    dump_json(out / "eval.json", report)
    with atomic.atomic_dir(out / "model", overwrite=True) as tmp:
        model.save_pretrained(str(tmp))  # type: ignore[operator]
    return 0


def _vocoder(data_cfg: TokenDataConfig, eval_cfg: TokenEvalConfig, train_utts: list[Any], k: int) -> Any:
    """The `CentroidVocoder` of the units' k-means model (``SHARDS/models/<name>``), with the
    fbank geometry of `eval_cfg.tts_feats` and mean run lengths from the train utterances."""

    model_dir = Path(data_cfg.shards) / "models" / data_cfg.units.split(".", 1)[1]
    if not (model_dir / "kmeans.json").is_file():
        raise InputError(str(model_dir), "no k-means model here: TTS evaluation vocodes the units through the "
                         "centroids of the run's k-means stage; set eval.tts_utts=0 to skip it")
    cfg = dict(ShardDataset(data_cfg.shards, groups=(eval_cfg.tts_feats,)).meta(eval_cfg.tts_feats).config)
    # the fbank stage records its whole `FbankConfig` (older shards: the four geometry fields)
    fbank = build(FbankConfig, {f.name: cfg[f.name] for f in fields(FbankConfig) if f.name in cfg},
                  eval_cfg.tts_feats)
    mean_run = CentroidVocoder.mean_runs([u.units for u in train_utts], k)
    return CentroidVocoder.from_kmeans(KMeansModel.load(model_dir), fbank, mean_run=mean_run)


def _transcriber(eval_cfg: TokenEvalConfig, sample_rate: int) -> Any:
    """1-best Whisper (CTranslate2, beam 1) over waveforms at `sample_rate` (resampled to 16 kHz;
    an empty waveform is read as 0.1 s of silence)."""
    # lazy: scipy only for resampling
    from scipy.signal import resample_poly

    asr = WhisperNBest(WhisperNBestConfig(model_dir=Path(expand(eval_cfg.tts_asr_model)),
                                          beam_size=1, num_hypotheses=1, threads=1))

    def transcribe(waves: list[Any]) -> list[str]:
        ready = [np.zeros(1600, np.float32) if w.size == 0 else
                 (w if sample_rate == 16000 else resample_poly(w, 16000, sample_rate).astype(np.float32))
                 for w in waves]
        return [h[0].text if h else "" for h in asr.decode_batch(ready)]

    return transcribe
