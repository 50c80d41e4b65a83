"""Token LM: data-loading headroom, and the speechocean762 run's perplexities and ASR CER.

`token.loader_headroom` = CPU s of one training step / CPU s to load and collate one batch, both
on 1 thread, same batches (the recipe `recipes/token_speechocean.yaml`: its batching, its model).
The loader is speechtok's `BatchLoader` on a torch `DataLoader` (fairseq2's pipeline was not
benchmarked against it: see docs/sections/trainers.md).

`token.unit_ppl`, `token.unigram_ppl`, `token.asr_cer` come from a finished training run's
`eval.json` (training takes longer than a benchmark may): `BENCH_TOKEN_RUN=RUN` (default
`runs/token_so`), produced by

    speechtok run recipes/token_speechocean_units.yaml -o runs/so_shards
    speechtok train token recipes/token_speechocean.yaml -o runs/token_so

Shards: `BENCH_TOKEN_SHARDS` (default `runs/so_shards`; built with the pipeline recipe into a
temporary directory when absent).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.common import SHARED, record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]


def _shards(tmp: Path) -> Path:
    path = Path(os.environ.get("BENCH_TOKEN_SHARDS", ROOT / "runs" / "so_shards"))
    if (path / "index.json").exists():
        return path
    from speechtok.pipeline.recipe import load_recipe
    from speechtok.pipeline.runner import RunOptions, run

    recipe = load_recipe(ROOT / "recipes" / "token_speechocean_units.yaml",
                         sets={"ingest.source": str(SHARED / "data" / "speechocean762-train80")})
    run(recipe, tmp / "so_shards", RunOptions(progress=False))
    return tmp / "so_shards"


def headroom(shards: Path, steps: int = 6) -> tuple[float, float, float]:
    """(loader CPU s per batch, train-step CPU s per batch, headroom)."""
    import torch

    from speechtok.config import build, load_recipe_dict
    from speechtok.tokenizers.vocab import VocabSpec
    from speechtok.trainers.data import BatchingConfig, BatchLoader
    from speechtok.trainers.llm import LLMConfig, build_llm, causal_lm_loss, load_tokenizer
    from speechtok.trainers.loop import LoopConfig, make_optimizer
    from speechtok.trainers.token.dataset import (
        SequenceSet,
        collate_sequences,
        load_utterances,
    )
    from speechtok.trainers.token.recipe import TokenDataConfig
    from speechtok.trainers.token.train import SCHEMA

    raw = load_recipe_dict(ROOT / "recipes" / "token_speechocean.yaml", {"data.shards": str(shards)}, SCHEMA)
    data_cfg = build(TokenDataConfig, raw["data"], "data")
    batching = build(BatchingConfig, raw["batching"], "batching")
    llm_cfg = build(LLMConfig, raw["llm"], "llm")
    utts, vocab = load_utterances(data_cfg)
    tok = load_tokenizer(llm_cfg, (u.text for u in utts))
    spec = VocabSpec.for_tokenizer(tok, units={data_cfg.units.split(".")[1]: vocab}, pad_to_multiple_of=8)
    spec.add_to_tokenizer(tok)
    items = SequenceSet(utts, data_cfg.tasks, spec, data_cfg, lambda t: tok(t, add_special_tokens=False)["input_ids"])
    loader = BatchLoader(items, items.lengths(), collate_sequences, batching)
    n_load = loader.epoch_batches()
    with timed() as t_load:
        batches = [next(loader) for _ in range(n_load)]
    model = build_llm(llm_cfg, spec.embedding_rows)
    opt = make_optimizer(model, LoopConfig(max_steps=1))
    next(iter(batches))  # warm
    with timed() as t_step:
        for b in batches[:steps]:
            causal_lm_loss(model, b).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
    load_s = t_load.cpu_s / n_load
    step_s = t_step.cpu_s / steps
    global _FS2
    _FS2 = fairseq2_loader(items, items.lengths(), batching, n_load, collate_sequences)
    _FS2["ours_pad_frac"] = _pad_frac([[len(s.ids) for s in b_items] for b_items in _batches_items(loader, items)])
    return load_s, step_s, step_s / load_s


_FS2: dict[str, float] = {}


def _pad_frac(batches: list[list[int]]) -> float:
    """Padding positions / all positions over batches of sequence lengths."""
    total = sum(max(b) * len(b) for b in batches if b)
    return 1.0 - sum(sum(b) for b in batches) / max(total, 1)


def _batches_items(loader: Any, items: Any) -> list[list[Any]]:
    from speechtok.trainers.data import plan_batches

    return [[items[int(i)] for i in b] for b in plan_batches(loader.lengths, loader.cfg, 0)]


def fairseq2_loader(items: Any, lengths: Any, batching: Any, n_batches: int, collate: Any) -> dict[str, float]:
    """The peer: fairseq2's native data pipeline (shuffle pool, `bucket_by_length` with
    `create_bucket_sizes` for the same token budget, prefetch), collating with the same function.
    Returns CPU s per batch and the padding fraction."""
    import numpy as np
    import torch
    from fairseq2.data.data_pipeline import create_bucket_sizes, read_sequence

    max_len = int(np.max(lengths))
    # fairseq2 wants a budget that is a multiple of the longest sequence: the nearest below ours
    budget = max(1, batching.max_tokens // max_len) * max_len
    sizes = create_bucket_sizes(max_num_elements=budget, max_seq_len=max_len, min_seq_len=1)
    sizes = [(min(b, batching.max_batch), n) for b, n in sizes]
    pipe = (read_sequence(list(range(len(items))))
            .shuffle(batching.pool_size, seed=batching.seed)
            .map(lambda i: {"idx": i, "ids": torch.from_numpy(items[i].ids)})
            .bucket_by_length(sizes, selector="ids", skip_above_max_examples=True)
            .map(lambda b: (collate([items[e["idx"]] for e in b]), [len(e["ids"]) for e in b]))
            .prefetch(4)
            .and_return())
    it = iter(pipe)
    lens: list[list[int]] = []
    with timed() as t:
        for _ in range(n_batches):
            try:
                _, ls = next(it)
            except StopIteration:
                break
            lens.append(ls)
    return {"cpu_s_per_batch": t.cpu_s / max(len(lens), 1), "wall_s_per_batch": t.wall_s / max(len(lens), 1),
            "pad_frac": _pad_frac(lens), "batches": float(len(lens))}


def main() -> None:
    set_threads(1)
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shards = _shards(Path(tmp))
        load_s, step_s, ratio = headroom(shards)
    print(f"loader {load_s * 1e3:.1f} ms CPU/batch, train step {step_s * 1e3:.0f} ms CPU/batch")
    figures["token.loader_headroom"] = ratio
    if _FS2:
        figures["token.loader_cpu_ms_per_batch"] = load_s * 1e3
        figures["token.fairseq2_loader_cpu_ms_per_batch"] = _FS2["cpu_s_per_batch"] * 1e3
        figures["token.loader_pad_frac"] = _FS2["ours_pad_frac"]
        figures["token.fairseq2_loader_pad_frac"] = _FS2["pad_frac"]
        notes["token.fairseq2_loader_cpu_ms_per_batch"] = (
            f"fairseq2 0.8 read_sequence.shuffle.bucket_by_length(create_bucket_sizes, same token budget)"
            f".prefetch(4), same items and collate, {_FS2['batches']:.0f} batches; CPU of this process only "
            "(prefetch threads included)")
        notes["token.loader_pad_frac"] = "padding positions / all positions per epoch, speechtok BatchLoader"
    notes["token.loader_headroom"] = (f"train-step CPU s / loader CPU s per batch, 1 thread: {step_s * 1e3:.0f} ms / "
                                      f"{load_s * 1e3:.1f} ms; torch DataLoader + BatchLoader, speechocean units")
    run = Path(os.environ.get("BENCH_TOKEN_RUN", ROOT / "runs" / "token_so"))
    report_path = run / "eval.json"
    if report_path.exists():
        rep = json.loads(report_path.read_text())
        unit_key = next(k for k in rep if k.startswith("ppl.unitlm.units."))
        figures["token.unit_ppl"] = rep[unit_key]
        figures["token.unigram_ppl"] = rep["ppl.unigram.units"]
        rec = json.loads((run / "recipe.json").read_text())
        where = (f"speechocean762-train80, {rep['dev_utts']} dev utts of {len(rep['dev_speakers'])} held-out speakers, "
                 f"{rep['steps']} steps, {rep['train_wall_s'] / 60:.0f} min wall on a shared 2-core CPU, "
                 f"Llama {rec['llm']['hidden_size']}x{rec['llm']['num_layers']} from scratch")
        notes["token.unit_ppl"] = (f"{'dedup ' if rec['data'].get('dedup') else ''}{rec['data']['units']} units of "
                                   f"{rec['data']['shards']}, unit-LM task; {where}")
        notes["token.unigram_ppl"] = "add-one unigram over the same units, fitted on train"
        if "asr.cer" in rep:
            figures["token.asr_cer"] = rep["asr.cer"]
            notes["token.asr_cer"] = f"greedy ASR through the token LM (units -> text); {where}"
    else:
        print(f"no training run at {run}: unit_ppl / unigram_ppl / asr_cer not recorded (set BENCH_TOKEN_RUN)")
    tts_run = Path(os.environ.get("BENCH_TOKEN_TTS_RUN", ROOT / "runs" / "token_so_tts"))
    if (tts_run / "eval.json").exists():
        rep = json.loads((tts_run / "eval.json").read_text())
        if "tts.wer" in rep:
            for key in ("wer", "cer", "oracle_wer", "oracle_cer"):
                figures[f"token.tts_{key}"] = rep[f"tts.{key}"]
            rec = json.loads((tts_run / "recipe.json").read_text())
            notes["token.tts_wer"] = (
                f"Whisper tiny.en WER on speech generated by the token LM (text -> {rec['data']['units']} units, top-k "
                f"{rec['eval']['tts_top_k']} sampling -> centroid Griffin-Lim vocoder), {rep['tts.utts']} dev utts, "
                f"{rep['steps']} steps; eos reached in {100 * rep['tts.eos_rate']:.0f}%")
            notes["token.tts_oracle_wer"] = ("the same ASR on the vocoded real units of the same utterances: the "
                                             "ceiling of this unit vocoder")
    record(figures, notes)


if __name__ == "__main__":
    main()
