"""ASR through a trained token LM: greedy text after ``<|asr|> <|speech|> units <|text|>``.

The trainer's evaluation and ``speechtok transcribe`` both call `asr_records` (one utterance at
a time, so the same units give the same hypothesis). `load_token_run` reads ``RUN/model``
(Hugging Face safetensors), ``RUN/tokenizer`` and ``RUN/vocab_spec.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok.errors import InputError
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.hyps import hyp_record
from speechtok.trainers.token import sequences as sq
from speechtok.trainers.token.dataset import load_utterances
from speechtok.trainers.token.evaluate import allowed_ids, greedy_generate
from speechtok.trainers.token.recipe import TokenDataConfig


@torch.no_grad()
def asr_records(model: Any, spec: VocabSpec, unit_name: str, utts: Sequence[Any],
                decode: Callable[[list[int]], str], *, dedup: bool, max_new_tokens: int) -> list[dict[str, Any]]:
    """Hypothesis records (`speechtok.trainers.hyps`) of `utts` (with `.id`, `.units`, `.text`).

    Scores: ``logprob`` (sum of log p of the text tokens and eos after the prompt, under the
    unrestricted softmax), ``tokens`` (hypothesis length), ``speech_tokens`` (prompt units).
    """
    allowed, eos = allowed_ids(spec, 0, spec.text_size)
    device = next(model.parameters()).device
    out = []
    for u in utts:
        prompt = sq.asr_prompt(spec, unit_name, u.units, dedup=dedup)  # (L,) int64
        ids = greedy_generate(model, prompt, allowed, eos, max_new_tokens)
        full = torch.as_tensor(np.concatenate([prompt, np.asarray(ids + [eos], np.int64)]), device=device)[None]
        logits = model(input_ids=full).logits[0, len(prompt) - 1 : -1].float()  # (N+1, V)
        logp = torch.log_softmax(logits, -1).gather(1, full[0, len(prompt):, None]).sum()
        out.append(hyp_record(u.id, decode(ids), u.text or None,
                              {"logprob": float(logp), "tokens": len(ids), "speech_tokens": len(prompt) - 3}))
    return out


@dataclass
class TokenRun:
    """A trained token run ready to decode."""

    run_dir: Path
    model: Any
    spec: VocabSpec
    decode: Callable[[list[int]], str]
    recipe: dict[str, Any]

    @property
    def units_group(self) -> str:
        return str(self.recipe["data"]["units"])

    @property
    def shards(self) -> str:
        return str(self.recipe["data"]["shards"])

    def decode_utts(self, utts: Sequence[Any]) -> list[dict[str, Any]]:
        return asr_records(self.model, self.spec, self.units_group.split(".", 1)[1], utts, self.decode,
                           dedup=bool(self.recipe["data"].get("dedup", True)),
                           max_new_tokens=int(self.recipe["eval"]["max_new_tokens"]))


def load_token_run(run_dir: str | Path, *, device: str = "cpu") -> TokenRun:
    """The model, vocabulary and tokenizer of a finished token run."""
    # lazy: transformers only on this path
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    run = Path(run_dir)
    if not (run / "model").is_dir():
        raise InputError(str(run), "has no model/ directory: is it a finished token run?")
    rec = json.loads((run / "recipe.json").read_text())
    spec = VocabSpec.load(run)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run / "tokenizer"))
    model: Any = AutoModelForCausalLM.from_pretrained(str(run / "model"), local_files_only=True,
                                                      torch_dtype=torch.float32)
    model.to(device)
    model.eval()

    def decode(ids: list[int]) -> str:
        return str(tokenizer.decode(ids, skip_special_tokens=True))

    return TokenRun(run_dir=run, model=model, spec=spec, decode=decode, recipe=rec)


def shard_utterances(shards: str | Path, units: str, *, keep: Callable[[Any], bool] | None = None) -> list[Any]:
    """The utterances (id, speaker, text, units) of a shard directory in shard order; `keep(utt)`
    selects some (rows quarantined upstream, or without a speaker or text, are left out, as in
    training)."""

    utts, _ = load_utterances(TokenDataConfig(shards=str(shards), units=units, tasks=("asr",)))
    return [u for u in utts if keep is None or keep(u)]
