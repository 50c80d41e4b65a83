"""Evaluation of a token LM: perplexity per token kind, a unigram baseline, greedy (or sampled)
generation, TTS scored by intelligibility (ASR through the LM: `speechtok.trainers.token.decode`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from speechtok.tokenizers.units import dedup as dedup_runs
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.metrics import cer, wer
from speechtok.trainers.token import sequences as sq
from speechtok.trainers.token.dataset import collate_sequences
from speechtok.trainers.token.sequences import tts_prompt


@torch.no_grad()
def perplexity_by_kind(model: Any, seqs: Sequence[sq.TokenSequence], spec: VocabSpec, *,
                       batch_size: int = 16) -> dict[str, float]:
    """Perplexity over the loss positions of `seqs`, per token range of the *target* id
    (`ppl.text`, `ppl.special`, `ppl.units.km100`, ...), and per task for unit targets
    (`ppl.unitlm.units.km100` is the unit-LM perplexity). Counts are in `n.<key>`."""
    model.eval()
    device = next(model.parameters()).device
    nll: dict[str, float] = {}
    count: dict[str, int] = {}
    names = [r.name for r in spec.ranges]
    for start in range(0, len(seqs), batch_size):
        chunk = list(seqs[start : start + batch_size])
        batch = collate_sequences(chunk)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)  # (B, L-1, V)
        target = batch["labels"][:, 1:].to(device)  # (B, L-1)
        mask = target != -100
        tok_nll = -logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, L-1)
        kinds = spec.kind_of(target.clamp(min=0).cpu().numpy())
        values = tok_nll.cpu().numpy()
        m = mask.cpu().numpy()
        for b, seq in enumerate(chunk):
            for k in np.unique(kinds[b][m[b]]):
                sel = m[b] & (kinds[b] == k)
                for key in (names[k], f"{seq.task}.{names[k]}"):
                    nll[key] = nll.get(key, 0.0) + float(values[b][sel].sum())
                    count[key] = count.get(key, 0) + int(sel.sum())
    out: dict[str, float] = {}
    for key in nll:
        out[f"ppl.{key}"] = math.exp(nll[key] / max(count[key], 1))
        out[f"n.{key}"] = float(count[key])
    return out


def unigram_perplexity(train_units: Sequence[np.ndarray], dev_units: Sequence[np.ndarray], vocab: int) -> float:
    """Perplexity of an add-one unigram model fitted on `train_units`, on `dev_units` (each `(T,)`)."""
    counts = np.ones(vocab, dtype=np.float64)
    for u in train_units:
        counts += np.bincount(np.asarray(u, dtype=np.int64), minlength=vocab)[:vocab]
    logp = np.log(counts / counts.sum())
    dev = np.concatenate([np.asarray(u, dtype=np.int64) for u in dev_units])
    return float(math.exp(-logp[dev].mean()))


@torch.no_grad()
def greedy_generate(model: Any, prompt: np.ndarray, allowed: torch.Tensor, stop_id: int, max_new_tokens: int, *,
                    top_k: int = 1, temperature: float = 1.0, generator: torch.Generator | None = None) -> list[int]:
    """Continuation of `prompt` `(L,)` restricted to ids where `allowed` `(V,)` bool is True;
    stops at `stop_id` (not returned) or after `max_new_tokens`. Greedy with ``top_k=1``;
    otherwise sampled from the `top_k` most likely ids at `temperature` (deterministic for a
    seeded CPU `generator`)."""
    model.eval()
    device = next(model.parameters()).device
    ids = torch.as_tensor(prompt, dtype=torch.int64, device=device)[None]
    out = model(input_ids=ids, use_cache=True)
    block = ~allowed.to(device)
    result: list[int] = []
    for _ in range(max_new_tokens):
        logits = out.logits[0, -1, : block.shape[0]].masked_fill(block, float("-inf"))
        if top_k > 1:
            vals, idx = torch.topk(logits.float().cpu(), min(top_k, int(allowed.sum())))
            pick = torch.multinomial(torch.softmax(vals / temperature, -1), 1, generator=generator)
            nxt = int(idx[pick])
        else:
            nxt = int(logits.argmax())
        if nxt == stop_id:
            break
        result.append(nxt)
        out = model(input_ids=torch.tensor([[nxt]], device=device), past_key_values=out.past_key_values, use_cache=True)
    return result


def allowed_ids(spec: VocabSpec, start: int, stop: int) -> tuple[torch.Tensor, int]:
    """`(V,)` bool mask of the ids `[start, stop)` and ``<|eos|>``, and the eos id (what a
    generation restricted to one token range may emit)."""
    allowed = torch.zeros(spec.size, dtype=torch.bool)
    allowed[start:stop] = True
    eos = spec.special_id("<|eos|>")
    allowed[eos] = True
    return allowed, eos


def tts_eval(model: Any, spec: VocabSpec, unit_name: str, utts: Sequence[Any], encode_text: Callable[[str], list[int]],
             vocoder: Any, transcribe: Callable[[list[np.ndarray]], list[str]], *, dedup: bool, top_k: int = 20,
             temperature: float = 1.0, seed: int = 0, units_per_char: float = 6.0) -> dict[str, Any]:
    """TTS through the token LM, scored by intelligibility: text -> units (sampled, `top_k`) ->
    `vocoder` (`CentroidVocoder`) -> waveform -> `transcribe` (an ASR model) -> WER/CER
    against the text. The same ASR on the vocoded *real* units of each utterance gives the
    vocoder's ceiling (``tts.oracle_wer``). Generation stops at `<|eos|>` or after
    ``units_per_char * len(text) + 20`` units.

    Returns ``tts.wer``, ``tts.cer``, ``tts.oracle_wer``, ``tts.oracle_cer``,
    ``tts.units_per_utt`` (generated), ``tts.eos_rate`` and up to 10 ``tts.examples``.
    """

    r = spec.range(f"units.{unit_name}")
    allowed, eos = allowed_ids(spec, r.start, r.stop)
    gen = torch.Generator().manual_seed(seed)
    refs: list[str] = []
    made: list[np.ndarray] = []
    oracle: list[np.ndarray] = []
    lengths: list[int] = []
    ended = 0
    for u in utts:
        limit = int(units_per_char * len(u.text)) + 20
        ids = greedy_generate(model, tts_prompt(spec, encode_text(u.text)), allowed, eos, limit,
                              top_k=top_k, temperature=temperature, generator=gen)
        ended += len(ids) < limit
        units = spec.to_units(unit_name, np.asarray(ids, np.int64)).astype(np.int64)
        lengths.append(int(units.size))
        # deduplicated targets get each unit's mean run length; frame-level ones play as they are
        made.append(vocoder.units_to_wave(units) if dedup else vocoder.units_to_wave(units, np.ones_like(units)))
        real, runs = dedup_runs(np.asarray(u.units))
        oracle.append(vocoder.units_to_wave(np.asarray(real, np.int64), np.asarray(runs, np.int64)))
        refs.append(u.text)
    hyps, hyps_oracle = transcribe(made), transcribe(oracle)
    return {
        "tts.wer": wer(refs, hyps).rate, "tts.cer": cer(refs, hyps).rate,
        "tts.oracle_wer": wer(refs, hyps_oracle).rate, "tts.oracle_cer": cer(refs, hyps_oracle).rate,
        "tts.units_per_utt": float(np.mean(lengths)) if lengths else 0.0,
        "tts.eos_rate": ended / max(len(utts), 1), "tts.utts": len(utts),
        "tts.examples": [{"ref": a, "asr_of_generated": b, "asr_of_oracle": c}
                         for a, b, c in list(zip(refs, hyps, hyps_oracle, strict=True))[:10]],
    }
