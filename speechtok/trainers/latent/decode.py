"""Greedy decoding of a latent run (encoder + adapter + LLM) over rows of features.

The trainer's final evaluation and ``speechtok transcribe`` both call `decode_records`, in
batches of `DECODE_BATCH` rows in the order given, so the same rows give the same hypotheses.
`load_latent_run` rebuilds the model of ``RUN`` from ``recipe.json``, ``latent_model.json``
(feature dim, CTC and text vocabulary sizes, prompt ids), ``tokenizer/`` and the last stage-2
checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok.config import build
from speechtok.errors import ConfigError, InputError
from speechtok.models.checkpoint import latest_checkpoint, load_model_tensors
from speechtok.models.encoder import EncoderConfig, build_encoder
from speechtok.shards.reader import ShardDataset
from speechtok.trainers.data import pad_2d
from speechtok.trainers.hyps import hyp_record
from speechtok.trainers.latent.adapters import AdapterConfig, build_adapter
from speechtok.trainers.latent.model import SpeechLLM
from speechtok.trainers.latent.options import LatentOptions, target_text
from speechtok.trainers.llm import LLMConfig, build_llm, text_codec

#: rows per encoder/adapter call (the LLM decodes one row at a time)
DECODE_BATCH = 16


@dataclass(frozen=True)
class DecodeRow:
    """One utterance to decode: id, features `(T, D)` float32, reference text or None."""

    id: str
    feats: np.ndarray
    reference: str | None


@torch.no_grad()
def decode_records(model: Any, rows: Sequence[DecodeRow], decode: Callable[[list[int]], str], *,
                   max_new_tokens: int, allowed: torch.Tensor | None, batch_size: int = DECODE_BATCH,
                   left_out: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Hypothesis records (`speechtok.trainers.hyps`) of `rows`, in order.

    Scores: ``logprob`` (sum of log p of the hypothesis tokens and eos, teacher-forced, under
    the unrestricted softmax; without eos when the hypothesis ran to the end of the LM's learned
    positions), ``tokens`` (hypothesis length), ``speech_tokens`` (adapter outputs the LLM read).

    `left_out`: a row whose speech + prompt leaves no position of the LM's learned ones (Whisper's
    decoder: 448; the adapter's output length decides) gets no record; its id -> reason is recorded
    here. With `left_out` None such a row is an `InputError`.
    """
    model.eval()
    out: list[dict[str, Any]] = []
    device = model.prefix.device
    limit = model.max_positions
    for s in range(0, len(rows), batch_size):
        chunk = rows[s : s + batch_size]
        feats, lengths = pad_2d([r.feats for r in chunk])  # (B, T, D) float32, (B,) int64
        long_rows: list[int] | None = None if left_out is None else []
        ids = model.generate(feats, lengths, max_new_tokens=max_new_tokens, allowed=allowed, left_out=long_rows)
        y, yl, _, _ = model.speech(feats.to(device), lengths.to(device))  # (B, T', H), (B,)
        for b, (row, seq) in enumerate(zip(chunk, ids, strict=True)):
            if long_rows and b in long_rows and left_out is not None:
                left_out[row.id] = (f"{int(yl[b])} speech positions + prompt leave no room in the LM's {limit} "
                                    "learned positions")
                continue
            tgt = torch.tensor(seq, dtype=torch.int64)
            emb, mask, labels = model._splice(y[b : b + 1], yl[b : b + 1], [tgt])  # (1, L, H)
            if limit is not None:  # a hypothesis that filled the table: its eos has no position
                emb, mask, labels = emb[:, :limit], mask[:, :limit], labels[:, :limit]
            memory = model._memory(y[b : b + 1], yl[b : b + 1])
            logits = model.llm(inputs_embeds=emb, attention_mask=mask, **memory).logits[0, :-1].float()  # (L-1, V)
            lab = labels[0, 1:]
            keep = lab >= 0
            logp = torch.log_softmax(logits[keep], -1).gather(1, lab[keep, None]).sum()
            out.append(hyp_record(row.id, decode(seq), row.reference,
                                  {"logprob": float(logp), "tokens": len(seq), "speech_tokens": int(yl[b])}))
    return out


@dataclass
class LatentRun:
    """A trained latent run ready to decode: its model, text decoder and options."""

    run_dir: Path
    model: Any
    decode: Callable[[list[int]], str]
    allowed: torch.Tensor
    recipe: dict[str, Any]

    @property
    def feats_group(self) -> str:
        return str(self.recipe["data"]["feats"])

    @property
    def shards(self) -> str:
        return str(self.recipe["data"]["shards"])

    def decode_rows(self, rows: Sequence[DecodeRow], left_out: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """`decode_records` of `rows` with the run's options (`left_out` as there)."""
        return decode_records(self.model, rows, self.decode, allowed=self.allowed, left_out=left_out,
                              max_new_tokens=int(self.recipe["latent"]["max_new_tokens"]))


def load_latent_run(run_dir: str | Path, in_dim: int, *, device: str = "cpu") -> LatentRun:
    """Rebuilds encoder + adapter + LLM of a finished latent run and loads its last stage-2
    checkpoint. `in_dim`: the feature dimension D of the rows to decode."""

    run = Path(run_dir)
    rec = json.loads((run / "recipe.json").read_text())
    ckpt = latest_checkpoint(run / "stage2")
    if ckpt is None:
        raise InputError(str(run), "has no stage-2 checkpoint: is it a finished latent run?")
    # lazy: transformers only on this path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(run / "tokenizer"), local_files_only=True)
    text_size = len(tokenizer)
    geometry_path = run / "latent_model.json"
    if not geometry_path.is_file():
        raise InputError(str(geometry_path), "missing: the run predates `speechtok transcribe` support; "
                         "retrain it (the trainer writes latent_model.json)")
    geo = json.loads(geometry_path.read_text())
    if int(geo["in_dim"]) != int(in_dim):
        raise ConfigError("feats.dim", in_dim, f"must equal {geo['in_dim']}, the feature dim the run was trained on")
    enc_cfg = build(EncoderConfig, rec["encoder"], "encoder")
    ad_cfg = build(AdapterConfig, rec["adapter"], "adapter")
    llm_cfg = build(LLMConfig, rec["llm"], "llm")
    opts = build(LatentOptions, rec["latent"], "latent")
    encoder = build_encoder(enc_cfg, in_dim, int(geo["ctc_size"]) + 1)
    llm: Any = build_llm(llm_cfg, int(geo["text_size"]))
    hidden = int(llm.get_input_embeddings().weight.shape[1])
    adapter = build_adapter(ad_cfg, encoder.dim, hidden, ctc_head=encoder.ctc_head, blank=0)
    model = SpeechLLM(encoder, adapter, llm, prefix_ids=list(geo["prefix_ids"]), suffix_ids=list(geo["suffix_ids"]),
                      eos_id=int(geo["eos_id"]), ctc_weight=opts.ctc_weight, train_encoder=opts.train_encoder,
                      speech_into=opts.speech_into)
    load_model_tensors(model, ckpt / "model.safetensors")
    model.to(device).eval()
    return LatentRun(run_dir=run, model=model, decode=text_codec(tokenizer)[1],
                     allowed=torch.ones(text_size, dtype=torch.bool), recipe=rec)


def shard_rows(shards: str | Path, feats: str, target: str = "text", *,
               keep: Callable[[dict[str, Any]], bool] | None = None) -> list[DecodeRow]:
    """Rows of a shard directory (in shard order) with their `feats` group and `target` text;
    `keep(cuts_row)` selects some (e.g. the run's dev speakers). Rows quarantined upstream are
    skipped; so are rows with 0 frames (counted in a printed note)."""

    column = "cut" if target.startswith("custom.") else target
    ds = ShardDataset(shards, groups=("cuts", feats), columns=[feats, column, "speaker"])
    out = []
    empty = 0
    for row in ds:
        if keep is not None and not keep(row):
            continue
        f = np.asarray(row[feats], dtype=np.float32)
        if len(f) == 0:
            empty += 1
            continue
        out.append(DecodeRow(id=str(row["id"]), feats=f, reference=target_text(row, target) or None))
    if empty:
        print(f"speechtok: {shards}: left out {empty} rows with 0 frames of {feats} (nothing to decode; "
              f"{len(out)} rows decoded)", flush=True)
    return out
