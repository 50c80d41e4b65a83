"""Evaluation of a token LM: perplexity per token kind, a unigram baseline, ASR by greedy decoding."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.token import sequences as sq
from speechtok.trainers.token.dataset import collate_sequences


@torch.no_grad()
def perplexity_by_kind(
    model: Any, seqs: Sequence[sq.TokenSequence], spec: VocabSpec, *, batch_size: int = 16
) -> dict[str, float]:
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
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
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
def greedy_generate(model: Any, prompt: np.ndarray, allowed: torch.Tensor, stop_id: int, max_new_tokens: int) -> list[int]:
    """Greedy continuation of `prompt` `(L,)` restricted to ids where `allowed` `(V,)` bool is True;
    stops at `stop_id` (not returned) or after `max_new_tokens`."""
    model.eval()
    device = next(model.parameters()).device
    ids = torch.as_tensor(prompt, dtype=torch.int64, device=device)[None]
    out = model(input_ids=ids, use_cache=True)
    block = ~allowed.to(device)
    result: list[int] = []
    for _ in range(max_new_tokens):
        logits = out.logits[0, -1, : block.shape[0]].masked_fill(block, float("-inf"))
        nxt = int(logits.argmax())
        if nxt == stop_id:
            break
        result.append(nxt)
        out = model(input_ids=torch.tensor([[nxt]], device=device), past_key_values=out.past_key_values, use_cache=True)
    return result


def asr_eval(
    model: Any, spec: VocabSpec, unit_name: str, utts: Sequence[Any], decode: Callable[[list[int]], str],
    *, dedup: bool, max_new_tokens: int,
) -> tuple[list[str], list[str]]:
    """Greedy ASR through the token LM: `(references, hypotheses)` for `utts` (with `.units`, `.text`)."""
    allowed = torch.zeros(spec.size, dtype=torch.bool)
    allowed[: spec.text_size] = True
    eos = spec.special_id("<|eos|>")
    allowed[eos] = True
    refs, hyps = [], []
    for u in utts:
        prompt = sq.asr_prompt(spec, unit_name, u.units, dedup=dedup)
        hyps.append(decode(greedy_generate(model, prompt, allowed, eos, max_new_tokens)))
        refs.append(u.text)
    return refs, hyps
