"""Generative error correction (GER): a causal LM writes the transcription from the n-best.

Training examples are HyPoradise records (`speechtok.trainers.cascade.hyporadise`): the prompt
(`build_prompt`, H2T-LoRA's template or a short one) is context only (labels -100, unless
``train_on_inputs``), the normalised reference followed by ``</s>`` is what the model learns to
generate. The model is `speechtok.trainers.llm.build_llm` of ``ger.llm`` (its ``path``: the
cascade's text LM unless set; ``mode``: full or LoRA through `peft`, the adapter merged into the
saved model so inference needs no peft), trained by the shared loop
(`speechtok.trainers.cascade.text_lm.fit_causal_lm`: ``metrics.jsonl``, checkpoints, resume).
Inference is batched greedy decoding with left padding; the answer is the generated text up to
``</s>`` or the first newline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok import atomic, hub
from speechtok.errors import ConfigError, InputError
from speechtok.trainers.cascade.hyporadise import PROMPTS, build_prompt
from speechtok.trainers.cascade.text_lm import TrainReport, fit_causal_lm, save_trained
from speechtok.trainers.data import BatchingConfig
from speechtok.trainers.llm import LLMConfig, build_llm, load_causal_lm, load_tokenizer, special_ids
from speechtok.trainers.loop import LoopConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GERConfig:
    """How to fine-tune and run a GER model (the cascade recipe's ``ger:`` section).

    Attributes:
        enabled: read by the cascade (train GER at all).
        prompt: "short" or "h2t" (`speechtok.trainers.cascade.hyporadise.PROMPTS`).
        train_on_inputs: the prompt's tokens are in the loss too.
        max_new_tokens, infer_batch_size: greedy correction.
        llm: the model (`LLMConfig`): ``path`` a local causal LM directory (unset: the cascade's
            own text LM, set by the run), ``mode`` "full" or "lora" with ``lora_*``.
        train: the optimisation (`LoopConfig`); the recipe's ``device`` and ``seed`` fill its own.
        batching: examples per batch (`BatchingConfig`).
    """

    enabled: bool = True
    prompt: str = "short"
    train_on_inputs: bool = False
    max_new_tokens: int = 48
    infer_batch_size: int = 32
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: LoopConfig = field(default_factory=lambda: LoopConfig(max_steps=600))
    batching: BatchingConfig = field(default_factory=lambda: BatchingConfig(max_batch=16))

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if self.llm.mode not in ("full", "lora"):
            raise ConfigError("ger.llm.mode", self.llm.mode, "must be 'full' or 'lora'")
        if self.prompt not in PROMPTS:
            raise ConfigError("ger.prompt", self.prompt, f"must be one of {sorted(PROMPTS)}")
        for name in ("max_new_tokens", "infer_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ger.{name}", getattr(self, name), "must be >= 1")
        self.llm.validate()
        self.train.validate()
        self.batching.validate()


def _special_ids(tokenizer: Any) -> tuple[int, int, int]:
    return special_ids(tokenizer, "tokenizer", "GER needs one to stop generation")


def make_examples(records: Sequence[dict[str, object]], tokenizer: Any, *, prompt: str, train_on_inputs: bool,
                  max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record: ``<s> prompt`` (masked) + ``reference </s>`` (learned)."""
    bos, eos, _ = _special_ids(tokenizer)
    out = []
    for rec in records:
        ctx = [bos, *tokenizer(build_prompt(rec, prompt), add_special_tokens=False)["input_ids"]]
        ans = [*tokenizer(str(rec["output"]), add_special_tokens=False)["input_ids"], eos]
        ids = (ctx + ans)[:max_length]
        labels = (list(ctx) if train_on_inputs else [-100] * len(ctx)) + ans
        out.append((ids, labels[:max_length]))
    return out


def _embedding_rows(llm: LLMConfig, tokenizer: Any) -> int:
    """The base model's own embedding rows (so `build_llm` never resizes it): ``vocab_size`` of
    its ``config.json`` for a checkpoint directory, else the tokenizer's size."""
    if llm.path is None:
        return len(tokenizer)
    conf = json.loads((Path(llm.path) / "config.json").read_text())
    if not isinstance(conf.get("vocab_size"), int):
        raise InputError(str(Path(llm.path) / "config.json"), "has no integer vocab_size")
    return int(conf["vocab_size"])


def train_ger(records: Sequence[dict[str, object]], out_dir: Path, config: GERConfig) -> TrainReport:
    """Fine-tunes `config.llm` on HyPoradise `records` in `out_dir` (the loop's ``metrics.jsonl``
    and ``checkpoints/``: an interrupted run resumes); saves the model there."""
    config.validate()
    if config.llm.path is None and config.llm.kind != "whisper_decoder":
        raise ConfigError("ger.llm.path", None, "must be set before training (the cascade sets its text LM)")
    if not records:
        raise InputError("records", "is empty; GER needs training pairs")
    tokenizer = load_tokenizer(config.llm, [])
    torch.manual_seed(config.train.seed)  # LoRA's initial adapters are part of the run's seed
    model: Any = build_llm(config.llm, _embedding_rows(config.llm, tokenizer), train_embeddings=False)
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    examples = make_examples(records, tokenizer, prompt=config.prompt, train_on_inputs=config.train_on_inputs,
                             max_length=max_len)
    _, _, pad = _special_ids(tokenizer)
    report = fit_causal_lm(model, examples, out_dir, train_cfg=config.train, batching=config.batching, pad_id=pad)
    if config.llm.mode == "lora":
        with atomic.atomic_dir(out_dir / "adapter", overwrite=True) as tmp:
            model.save_pretrained(str(tmp))
        model = model.merge_and_unload()
    save_trained(model, out_dir, "ger_report.json", config, report)
    with atomic.atomic_files(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
    return report


class GERModel:
    """A fine-tuned GER model for batched greedy correction."""

    def __init__(self, model_dir: Path, *, prompt: str = "short", device: str = "cpu") -> None:
        # lazy: transformers takes seconds to import
        from transformers import AutoTokenizer

        if prompt not in PROMPTS:
            raise ConfigError("prompt", prompt, f"must be one of {sorted(PROMPTS)}")
        self.device = torch.device(device)
        self.tokenizer = hub.from_pretrained(AutoTokenizer, str(model_dir))
        model: Any = load_causal_lm(model_dir)
        self.model = model.to(self.device).eval()
        self.prompt = prompt
        self.bos, self.eos, self.pad = _special_ids(self.tokenizer)

    def correct(self, records: Sequence[dict[str, object]], *, batch_size: int = 32,
                max_new_tokens: int = 48) -> list[str]:
        """The corrected transcription of each record (greedy, batched, left-padded)."""
        prompts = [[self.bos, *self.tokenizer(build_prompt(r, self.prompt), add_special_tokens=False)["input_ids"]]
                   for r in records]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = np.full((len(idx), width), self.pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                p = prompts[i]
                ids[r, width - len(p) :] = p
                mask[r, width - len(p) :] = 1
            with torch.inference_mode():
                gen = self.model.generate(input_ids=torch.from_numpy(ids).to(self.device),  # (B, T)
                                          attention_mask=torch.from_numpy(mask).to(self.device),  # (B, T)
                                          max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                          pad_token_id=self.pad, eos_token_id=self.eos)
            new = gen[:, width:].cpu().numpy()  # (B, <= max_new_tokens)
            for r, i in enumerate(idx):
                toks = [int(t) for t in new[r]]
                if self.eos in toks:
                    toks = toks[: toks.index(self.eos)]
                text = self.tokenizer.decode(toks, skip_special_tokens=True)
                answers[i] = text.split("\n", 1)[0].strip()
        return answers
