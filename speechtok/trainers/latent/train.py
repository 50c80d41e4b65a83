"""`speechtok train latent RECIPE.yaml -o RUN`: encoder + modality adapter + causal LM.

Two stages on one shared loop (`speechtok.trainers.loop.train`):
1. `stage1` (optional): the encoder alone with its CTC head (CTC loss) -> `RUN/stage1/`.
   Or `latent.encoder_from: OTHER_RUN` reuses another run's stage-1 encoder (what the adapter
   comparison does, so every adapter sees the same encoder).
2. `train`: adapter + LLM (`llm.mode`: full, lora, frozen) on the prompt-spliced sequences,
   encoder frozen unless `latent.train_encoder` -> `RUN/stage2/`.
`RUN/eval.json`: CER/WER of greedy decoding on the speaker-disjoint dev split (per utterance in
`RUN/dev_hyps.jsonl`), adapter output tokens per second of audio, trainable parameters, training
wall time, and the stage-1 CTC CER; with `data.test`, the test set's `test.wer` (`RUN/test_hyps.jsonl`).
`too_long` counts what did not fit the LM's learned positions (Whisper's decoder: 448; speech +
prompt + target, the speech length set by the adapter): ``train_rows`` (rows dropped from their
batch, once per draw), ``train_batches_skipped`` (batches left with no row: no update),
``dev``/``test`` (utterances not decoded); ``limit`` None: a Llama, nothing left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok import atomic
from speechtok.config import build, load_recipe_dict, to_json
from speechtok.errors import ConfigError, InputError
from speechtok.models.checkpoint import latest_checkpoint, load_model_tensors
from speechtok.models.encoder import EncoderConfig, build_encoder, ctc_greedy, ctc_loss
from speechtok.shards.reader import ShardDataset
from speechtok.shards.schema import FLOAT_KINDS
from speechtok.trainers.data import BatchingConfig, BatchLoader, ConcatItems, pad_2d, report_skipped
from speechtok.trainers.hyps import score_hyps, test_set_report, write_hyps
from speechtok.trainers.latent.adapters import AdapterConfig, build_adapter
from speechtok.trainers.latent.decode import DecodeRow, decode_records, shard_rows
from speechtok.trainers.latent.model import SpeechBatch, SpeechLLM
from speechtok.trainers.latent.options import LatentOptions, target_text, target_text_or_none
from speechtok.trainers.llm import (
    LLMConfig,
    build_char_tokenizer,
    build_llm,
    count_trainable,
    load_tokenizer,
    text_codec,
    whisper_dir,
)
from speechtok.trainers.loop import LoopConfig, train
from speechtok.trainers.metrics import cer
from speechtok.trainers.mixing import MixLoader, parse_sources
from speechtok.trainers.run_data import check_run_data, check_test_set
from speechtok.trainers.token.recipe import SplitConfig, dump_json


@dataclass(frozen=True, kw_only=True)
class LatentDataConfig:
    """Attributes:
    shards: shard directory. feats: feature group (e.g. "feats.fbank", "feats.whisper").
    target: the target text: a cuts column ("text" for ASR) or ``custom.KEY``, a supervision custom
        field (e.g. ``custom.translation`` for speech-to-text translation; JSONL ingest keeps
        unknown keys there).
    frame_rate: feature frames per second (tokens/s figures). split: `SplitConfig` fields.
    test: a separate test shard directory (same feature stages): decoded after training, scored
        only (``RUN/test_hyps.jsonl``, ``test.wer`` in eval.json); dev still comes from the split.
    sources: weighted corpora mixed batch by batch instead of `shards` (see
        `speechtok.trainers.mixing`): ``[{shards: A, weight: 0.7}, {shards: B, weight: 0.3,
        repeat: true}]``; every source must hold `feats` made as in the first (`FeatureSpec`,
        checked); dev is the union of the sources' speaker splits; `shards` defaults to the first.
    """

    shards: str = ""
    feats: str = "feats.fbank"
    target: str = "text"
    frame_rate: float = 100.0
    split: dict[str, Any] | None = None
    test: str | None = None
    sources: tuple[dict[str, Any], ...] = ()

    def validate(self) -> None:
        if not self.shards and not self.sources:
            raise ConfigError("data.shards", self.shards, "must name a shard directory (or give data.sources)")
        if self.feats.split(".", 1)[0] not in FLOAT_KINDS or "." not in self.feats:
            raise ConfigError("data.feats", self.feats, "must be a float (T, D) group like 'feats.fbank' "
                              f"(kinds {list(FLOAT_KINDS)}), not units, codes or cuts")
        parse_sources(self.sources)


class _Rows:
    """Dataset rows `indices` of a ShardDataset -> (feats (T, D) float32 array, target text)."""

    def __init__(self, ds: Any, indices: list[int], feats: str, target: str) -> None:
        self.ds, self.indices, self.feats, self.target = ds, indices, feats, target

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        row = self.ds[self.indices[int(i)]]
        return np.asarray(row[self.feats], dtype=np.float32), target_text(row, self.target)

    def decode_row(self, i: int) -> DecodeRow:
        """Row `i` as a `DecodeRow` (id, features, reference) for `decode_records`."""
        row = self.ds[self.indices[int(i)]]
        return DecodeRow(id=str(row["id"]), feats=np.asarray(row[self.feats], dtype=np.float32),
                         reference=target_text(row, self.target) or None)


class _ConcatRows(ConcatItems):
    """Several `_Rows` read as one (the dev set and the tokenizer texts of a mix)."""

    def decode_row(self, i: int) -> DecodeRow:
        part, j = self.locate(i)
        return part.decode_row(j)


def _split_sources(cfg: LatentDataConfig, split: SplitConfig) -> tuple[list[_Rows], list[_Rows], list[np.ndarray]]:
    """Per source of `cfg.sources`: (train rows, dev rows, train lengths); features checked."""

    specs = parse_sources(cfg.sources)
    trains, devs, lengths = [], [], []
    for k, spec in enumerate(specs):
        if k:
            check_run_data(spec.shards, [cfg.feats], trained_on=specs[0].shards)
        tr, dv, ln = _split(replace(cfg, shards=spec.shards, sources=()), split)
        trains.append(tr)
        devs.append(dv)
        lengths.append(ln[tr.indices])
    return trains, devs, lengths


def _split(cfg: LatentDataConfig, split: SplitConfig) -> tuple[_Rows, _Rows, np.ndarray]:
    column = "cut" if cfg.target.startswith("custom.") else cfg.target
    # both datasets read the feats group, so they skip the same quarantined rows
    meta = ShardDataset(cfg.shards, groups=("cuts", cfg.feats), columns=["speaker", column])
    ds = ShardDataset(cfg.shards, groups=("cuts", cfg.feats), columns=[cfg.feats, column])
    lengths = np.asarray(ds.lengths(cfg.feats), dtype=np.int64)
    usable, no_speaker, no_target, no_frames = [], 0, 0, 0
    for i, r in enumerate(meta):
        if not r.get("speaker"):
            no_speaker += 1  # the speaker-disjoint split needs one; never invented
        elif target_text_or_none(r, cfg.target) is None:
            no_target += 1  # nothing to train on; never an invented ""
        elif lengths[i] == 0:
            no_frames += 1  # nothing to encode (the CTC loss of stage 1 refuses an empty input)
        else:
            usable.append((i, str(r["speaker"])))
    report_skipped(cfg.shards, ds.num_quarantined, no_speaker, no_target, len(usable), no_frames=no_frames)
    tr = [i for i, s in usable if split.is_train(s)]
    dv = [i for i, s in usable if not split.is_train(s)]
    if not tr or not dv:
        raise InputError("split", f"{len(tr)} train and {len(dv)} dev utterances; change data.split")
    return _Rows(ds, tr, cfg.feats, cfg.target), _Rows(ds, dv, cfg.feats, cfg.target), lengths


#: The sections of a latent recipe and their config classes (what `--set` may name).
SCHEMA: dict[str, type] = {"data": LatentDataConfig, "encoder": EncoderConfig, "adapter": AdapterConfig,
                           "llm": LLMConfig, "batching": BatchingConfig, "latent": LatentOptions,
                           "stage1": LoopConfig, "train": LoopConfig}


def run_recipe(recipe_path: Path, out_dir: Path, sets: Mapping[str, Any]) -> int:
    """Entry point of ``speechtok train latent`` (`sets`: `speechtok.config.parse_sets`)."""
    raw = load_recipe_dict(recipe_path, sets, SCHEMA, what="latent recipe")
    data_cfg = build(LatentDataConfig, raw.get("data"), "data")
    enc_cfg = build(EncoderConfig, raw.get("encoder"), "encoder")
    ad_cfg = build(AdapterConfig, raw.get("adapter"), "adapter")
    llm_cfg = build(LLMConfig, raw.get("llm"), "llm")
    batching = build(BatchingConfig, raw.get("batching"), "batching")
    opts = build(LatentOptions, raw.get("latent"), "latent")
    stage1 = build(LoopConfig, raw["stage1"], "stage1") if raw.get("stage1") else None
    stage2 = build(LoopConfig, raw.get("train"), "train")
    split = build(SplitConfig, data_cfg.split, "data.split")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_json(out / "recipe.json", {k: to_json(v) for k, v in {
        "data": data_cfg, "encoder": enc_cfg, "adapter": ad_cfg, "llm": llm_cfg, "batching": batching,
        "latent": opts, "stage1": stage1, "train": stage2}.items()})

    if data_cfg.test:
        check_test_set(data_cfg.test, [data_cfg.feats], trained_on=data_cfg.shards)
    train_rows: _Rows | _ConcatRows
    dev_rows: _Rows | _ConcatRows
    if data_cfg.sources:
        train_parts, dev_parts, part_lengths = _split_sources(data_cfg, split)
        train_rows, dev_rows = _ConcatRows(train_parts), _ConcatRows(dev_parts)
    else:
        train_rows, dev_rows, all_lengths = _split(data_cfg, split)
        train_parts, part_lengths = [train_rows], [all_lengths[train_rows.indices]]
    mix = parse_sources(data_cfg.sources)

    def make_loader(collate: Any) -> BatchLoader | MixLoader:
        if mix:
            return MixLoader(train_parts, part_lengths, collate, batching, [m.weight for m in mix],
                             [m.repeat for m in mix])
        return BatchLoader(train_parts[0], part_lengths[0], collate, batching)
    # -> rows: (feats (T, D) float32, target text), disjoint by speaker
    tokenizer = load_tokenizer(llm_cfg, (train_rows[i][1] for i in range(len(train_rows))))
    with atomic.atomic_dir(out / "tokenizer", overwrite=True) as tmp:
        tokenizer.save_pretrained(str(tmp))
    text_size = len(tokenizer)
    encode, decode = text_codec(tokenizer)
    # the encoder's CTC head (stage 1, CTC compression) spells characters: the LM's own tokenizer
    # unless that is Whisper's 51,864-token BPE, which a CTC head trained here cannot cover
    ctc_tok = tokenizer if llm_cfg.kind == "llama" else build_char_tokenizer(
        train_rows[i][1] for i in range(len(train_rows)))
    ctc_size = len(ctc_tok)
    ctc_encode, _ = text_codec(ctc_tok)

    def collate(items: list[tuple[np.ndarray, str]]) -> SpeechBatch:
        feats, lengths = pad_2d([f for f, _ in items])
        targets = [torch.tensor(encode(t), dtype=torch.int64) for _, t in items]
        ctc_targets = targets if ctc_tok is tokenizer else [torch.tensor(ctc_encode(t), dtype=torch.int64)
                                                            for _, t in items]
        return SpeechBatch(feats=feats, lengths=lengths, targets=targets,
                           ctc_targets=[t + 1 for t in ctc_targets], texts=[t for _, t in items])

    in_dim = int(train_rows[0][0].shape[1])
    torch.manual_seed(stage2.seed)  # the initial weights are part of the run's seed
    encoder = build_encoder(enc_cfg, in_dim, ctc_size + 1)
    report: dict[str, Any] = {"adapter": to_json(ad_cfg), "train_utts": len(train_rows), "dev_utts": len(dev_rows)}
    dev_batch = collate([dev_rows[i] for i in range(min(len(dev_rows), opts.eval_utts))])

    # ---- stage 1: encoder + CTC
    if opts.encoder_from:
        ckpt = latest_checkpoint(Path(opts.encoder_from) / "stage1")
        if ckpt is None:
            raise ConfigError("latent.encoder_from", opts.encoder_from,
                              "must be a latent run with a stage-1 checkpoint")
        load_model_tensors(encoder, ckpt / "model.safetensors")
    elif stage1 is not None:
        def ctc_step(model: Any, batch: SpeechBatch) -> torch.Tensor:
            dev = next(model.parameters()).device
            h, hl = model(batch.feats.to(dev), batch.lengths.to(dev))
            return ctc_loss(model.ctc_head(h), hl, batch.ctc_targets)

        loader = make_loader(collate)
        t0 = time.perf_counter()
        train(encoder, ctc_step, loader, stage1, out / "stage1")
        report["stage1_wall_s"] = time.perf_counter() - t0
    encoder.eval()
    with torch.no_grad():
        h, hl = encoder(dev_batch.feats, dev_batch.lengths)
        hyps = [str(ctc_tok.decode([i - 1 for i in seq if 0 <= i - 1 < ctc_size], skip_special_tokens=True))
                for seq in ctc_greedy(encoder.ctc_head(h), hl)]

    report["ctc.cer"] = cer(dev_batch.texts, hyps).rate

    # ---- stage 2: adapter + LLM
    torch.manual_seed(stage2.seed + 1)
    llm: Any = build_llm(llm_cfg, text_size)
    hidden = int(llm.get_input_embeddings().weight.shape[1])
    adapter = build_adapter(ad_cfg, encoder.dim, hidden, ctc_head=encoder.ctc_head, blank=0)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("tokenizer", "has no eos token; the latent trainer needs one to end targets")
    prefix, suffix = bos, encode(opts.prompt_suffix)
    if llm_cfg.kind == "whisper_decoder":
        # lazy: brings huggingface_hub, scipy, sklearn, tokenizers, transformers, which only this path needs
        from speechtok.models.whisper_lm import sot_ids

        sot, no_ts = sot_ids(whisper_dir(llm_cfg))
        # Whisper's own prompt around the speech: <|startoftranscript|> speech <|notimestamps|> text
        prefix, suffix = ([sot], [no_ts, *suffix]) if opts.speech_into == "prefix" else ([sot, no_ts], suffix)
    model = SpeechLLM(encoder, adapter, llm, prefix_ids=prefix, suffix_ids=suffix,
                      eos_id=int(eos), ctc_weight=opts.ctc_weight, train_encoder=opts.train_encoder,
                      speech_into=opts.speech_into)
    # what `load_latent_run` needs to rebuild this model around its checkpoint (`speechtok transcribe`)
    dump_json(out / "latent_model.json", {"in_dim": in_dim, "ctc_size": ctc_size, "text_size": text_size,
                                          "prefix_ids": list(prefix), "suffix_ids": list(suffix), "eos_id": int(eos)})
    allowed = torch.ones(text_size, dtype=torch.bool)

    def eval_fn(m: Any) -> dict[str, float]:
        n = min(len(dev_batch.texts), 32)
        long_rows: list[int] = []  # past the LM's learned positions: not scored
        ids = m.generate(dev_batch.feats[:n], dev_batch.lengths[:n], max_new_tokens=opts.max_new_tokens,
                         allowed=allowed, left_out=long_rows)
        kept = [b for b in range(n) if b not in long_rows]
        # no cer when no row fits (0/0, not 0.0)
        out = {"cer": cer([dev_batch.texts[b] for b in kept], [decode(ids[b]) for b in kept]).rate} if kept else {}
        return {**out, "too_long": float(len(long_rows))} if long_rows else out

    loader = make_loader(collate)
    t0 = time.perf_counter()
    # rows past the LM's learned positions (Whisper's decoder: 448; the adapter's output length
    # decides, so only a batch's forward pass knows) are dropped from their batch and counted
    too_long_rows: list[str] = []
    skipped_batches = [0]

    def step(m: Any, batch: SpeechBatch) -> torch.Tensor:
        before = len(too_long_rows)
        loss: torch.Tensor = m.loss(batch, too_long_rows)
        skipped_batches[0] += len(too_long_rows) - before == len(batch.texts)
        return loss

    train(model, step, loader, stage2, out / "stage2", eval_fn=eval_fn)
    report["stage2_wall_s"] = time.perf_counter() - t0
    report["trainable_params"] = count_trainable(model)
    report["adapter_params"] = sum(p.numel() for n, p in adapter.named_parameters() if not n.startswith("ctc_head"))
    n_eval = min(len(dev_rows), opts.eval_utts)
    dev_decode = [dev_rows.decode_row(i) for i in range(n_eval)]
    dev_left_out: dict[str, str] = {}
    dev_records = decode_records(model, dev_decode, decode, max_new_tokens=opts.max_new_tokens, allowed=allowed,
                                 left_out=dev_left_out)
    write_hyps(out / "dev_hyps.jsonl", dev_records)  # what `speechtok transcribe` writes, per utterance
    scored = score_hyps(dev_records)
    report["cer"], report["wer"], report["dev_eval_utts"] = scored["cer"], scored["wer"], n_eval
    seconds = sum(len(r.feats) for r in dev_decode if r.id not in dev_left_out) / data_cfg.frame_rate
    speech_tokens = float(sum(r["scores"]["speech_tokens"] for r in dev_records))
    report["adapter_tokens_per_s"] = speech_tokens / seconds if seconds else None
    report["examples"] = [{"ref": r["reference"], "hyp": r["hypothesis"]} for r in dev_records[:8]]
    report["too_long"] = {"limit": model.max_positions, "train_rows": len(too_long_rows),
                          "train_batches_skipped": skipped_batches[0], "dev": len(dev_left_out)}
    if data_cfg.test:
        report.update(score_test_set(model, data_cfg, decode, out, opts.max_new_tokens, allowed))
        report["too_long"]["test"] = report.pop("test.too_long")
    tl = report["too_long"]
    if tl["train_rows"] or tl["dev"] or tl.get("test"):
        print(f"speechtok train latent: left out {tl['train_rows']} training row draws ({tl['train_batches_skipped']} "
              f"batches left empty, skipped), {tl['dev']} dev and {tl.get('test', 0)} test utterances longer than "
              f"the LM's {tl['limit']} learned positions (eval.json too_long)", flush=True)
    dump_json(out / "eval.json", report)
    return 0


def score_test_set(model: Any, data_cfg: LatentDataConfig, decode: Any, out: Path, max_new_tokens: int,
                   allowed: torch.Tensor) -> dict[str, Any]:
    """Decodes every row of the separate test set `data_cfg.test` (scored only, never tuned on)
    -> ``RUN/test_hyps.jsonl`` and ``test.wer``/``test.cer``/``test.utts``/``test.too_long`` (rows
    past the LM's learned positions, not decoded) for eval.json."""

    test = str(data_cfg.test)  # checked before training (`check_test_set`)
    rows = shard_rows(test, data_cfg.feats, data_cfg.target)
    left_out: dict[str, str] = {}  # rows past the LM's learned positions
    records = decode_records(model, rows, decode, max_new_tokens=max_new_tokens, allowed=allowed, left_out=left_out)
    return {**test_set_report(out / "test_hyps.jsonl", records, test), "test.too_long": len(left_out)}
