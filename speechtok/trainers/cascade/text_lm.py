"""The cascade's text LM: trained here on text, for rescoring and as the GER base.

No pretrained text LM can be downloaded on this machine, so the cascade trains its own: a
byte-level BPE tokenizer (`tokenizers`, so every string is encodable) and the tiny Llama of
`speechtok.trainers.llm.build_llm`, trained by the loop every family shares
(`speechtok.trainers.loop.train`: warmup + cosine, AdamW, ``metrics.jsonl``, checkpoints, resume),
then saved with ``save_pretrained`` so `HFCausalLMScorer` and `AutoModelForCausalLM` load it like
any Hugging Face checkpoint. ``llm.kind: whisper_decoder`` takes Whisper tiny.en's pretrained
decoder instead (not trained here). A ready LM (the recipe's ``lm_model_dir``) replaces both.

`fit_causal_lm` is shared with GER fine-tuning: examples are token-id lists with per-token labels
(-100 = not in the loss), batched by `speechtok.trainers.data.BatchLoader` with right padding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechtok import atomic
from speechtok.config import to_json
from speechtok.errors import ConfigError, InputError
from speechtok.trainers.data import BatchingConfig, BatchLoader, pad_1d
from speechtok.trainers.llm import LLMConfig, build_llm, causal_lm_loss, load_tokenizer, whisper_dir
from speechtok.trainers.loop import LoopConfig, read_metrics, train

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")
#: Optimiser steps at the end of a run whose logged losses `TrainReport.final_loss` averages.
FINAL_LOSS_STEPS = 20

Example = tuple[list[int], list[int]]


@dataclass(frozen=True, kw_only=True)
class TextLMConfig:
    """The cascade recipe's ``text_lm:`` section: the library configs of what it trains.

    Attributes:
        vocab_size: size of the byte-level BPE trained on the text (>= 260: 256 bytes + specials).
        llm: the LM (`LLMConfig`): the tiny Llama's sizes (``max_positions`` also cuts training
            sentences), or ``kind: whisper_decoder``; ``mode`` must be "full".
        train: the optimisation (`LoopConfig`); the recipe's ``device`` and ``seed`` fill its own.
        batching: sentences per batch (`BatchingConfig`: ``max_batch``, ``max_tokens``).
    """

    vocab_size: int = 1024
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: LoopConfig = field(default_factory=lambda: LoopConfig(max_steps=600))
    batching: BatchingConfig = field(default_factory=BatchingConfig)

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if self.vocab_size < 260:
            raise ConfigError("text_lm.vocab_size", self.vocab_size, "must be >= 260 (256 bytes + specials)")
        if self.llm.mode != "full":
            raise ConfigError("text_lm.llm.mode", self.llm.mode, "must be 'full' (the text LM is trained whole)")
        if self.llm.path is not None:
            raise ConfigError("text_lm.llm.path", self.llm.path,
                              "must be unset; a ready LM goes in the recipe's `lm_model_dir`")
        self.llm.validate()
        self.train.validate()
        self.batching.validate()


@dataclass(frozen=True, kw_only=True)
class TrainReport:
    """What a training run did (losses as logged in ``metrics.jsonl``; `final_loss` is the mean of
    the logged losses of the last `FINAL_LOSS_STEPS` steps)."""

    steps: int
    examples: int
    first_loss: float
    final_loss: float
    wall_s: float
    num_parameters: int


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts` (pad ``<pad>`` = 0, bos ``<s>``
    = 1, eos ``</s>`` = 2)."""
    # lazy: transformers takes seconds to import
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise InputError("texts", "is empty; the tokenizer needs some training text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


class PadExamples:
    """Collate of `fit_causal_lm`: (ids, labels) examples -> right-padded `(B, T)` int64
    ``input_ids`` (`pad_id`), ``labels`` (-100) and ``attention_mask`` (1 = token)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[Example]) -> dict[str, torch.Tensor]:
        ids, lengths = pad_1d([np.asarray(x, np.int64) for x, _ in items], self.pad_id)  # (B, T), (B,)
        labels, _ = pad_1d([np.asarray(y, np.int64) for _, y in items], -100)  # (B, T)
        mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()  # (B, T)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def fit_causal_lm(model: nn.Module, examples: Sequence[Example], run_dir: Path, *, train_cfg: LoopConfig,
                  batching: BatchingConfig, pad_id: int) -> TrainReport:
    """Trains `model` on (input_ids, labels) examples with `speechtok.trainers.loop.train` in
    `run_dir` (``metrics.jsonl``, ``checkpoints/``; a run directory with a checkpoint resumes).

    Args:
        examples: per example, token ids `(T,)` and labels `(T,)` (-100 = ignored), lists of int.
        pad_id: the padding id of ``input_ids``.
    """
    if not examples:
        raise InputError("examples", "is empty; nothing to train on")
    lengths = np.array([len(x) for x, _ in examples], dtype=np.int64)
    loader = BatchLoader(list(examples), lengths, PadExamples(pad_id), batching)
    result = train(model, causal_lm_loss, loader, train_cfg, run_dir)
    model.eval()
    logged = [r for r in read_metrics(run_dir) if "loss" in r]
    if not logged:
        raise InputError(str(run_dir / "metrics.jsonl"), "has no logged loss; set train.log_every >= 1")
    tail = [r["loss"] for r in logged if r["step"] >= train_cfg.max_steps - FINAL_LOSS_STEPS] or [logged[-1]["loss"]]
    return TrainReport(steps=result.step, examples=len(examples), first_loss=float(logged[0]["loss"]),
                       final_loss=float(np.mean(tail)), wall_s=result.wall_s,
                       num_parameters=sum(p.numel() for p in model.parameters()))


def save_trained(model: Any, out_dir: Path, report_name: str, config: Any, report: TrainReport) -> None:
    """Saves a model `fit_causal_lm` trained into `out_dir` (``save_pretrained``, safetensors) and
    ``out_dir/report_name``: ``{"config": config, "report": report}`` as JSON, each file atomically."""
    with atomic.atomic_files(out_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
    atomic.write_text(out_dir / report_name,
                      json.dumps({"config": to_json(config), "report": asdict(report)}, indent=2) + "\n")


def train_text_lm(texts: Sequence[str], out_dir: Path, config: TextLMConfig, *,
                  tokenizer_texts: Sequence[str] | None = None) -> TrainReport:
    """Trains a tokenizer and the tiny Llama of `config.llm` on `texts` (one sentence each) into
    `out_dir`; a directory left by an interrupted run resumes from its newest checkpoint (with the
    tokenizer it saved).

    Args:
        texts: training sentences (already normalised as the scorer will see them).
        out_dir: gets ``config.json``, ``model.safetensors``, the tokenizer files,
            ``train_report.json``, and the loop's ``metrics.jsonl`` and ``checkpoints/``.
        tokenizer_texts: extra text for the BPE merges only (e.g. GER prompts), not for the LM.
    """
    # lazy: transformers takes seconds to import
    from transformers import AutoTokenizer

    config.validate()
    if config.llm.kind != "llama":
        raise ConfigError("text_lm.llm.kind", config.llm.kind, "must be 'llama' to train here")
    texts = [t for t in texts if t.strip()]
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "tokenizer.json").is_file() and (out_dir / "checkpoints").is_dir():  # resuming
        tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    else:
        tokenizer = train_tokenizer([*texts, *(tokenizer_texts or [])], config.vocab_size)
        with atomic.atomic_files(out_dir) as tmp:
            tokenizer.save_pretrained(str(tmp))
    ids_of = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if ids_of != [0, 1, 2]:
        raise InputError("tokenizer", f"special tokens got ids {ids_of}, expected [0, 1, 2]")
    torch.manual_seed(config.train.seed)  # the initial weights are part of the run's seed
    model: Any = build_llm(config.llm, len(tokenizer))
    for holder in (model.config, model.generation_config):  # this tokenizer's ids, not the char layout's
        holder.pad_token_id, holder.bos_token_id, holder.eos_token_id = ids_of
    seqs = [[1, *tokenizer(t, add_special_tokens=False)["input_ids"], 2][: config.llm.max_positions] for t in texts]
    report = fit_causal_lm(model, [(ids, list(ids)) for ids in seqs], out_dir, train_cfg=config.train,
                           batching=config.batching, pad_id=0)
    save_trained(model, out_dir, "train_report.json", config, report)
    return report


def save_whisper_text_lm(out_dir: Path, llm: LLMConfig) -> dict[str, Any]:
    """Writes Whisper's pretrained decoder (`build_llm` of ``kind: whisper_decoder``) and its
    tokenizer to `out_dir` with ``save_pretrained`` (loadable by `speechtok.trainers.llm.load_causal_lm`);
    not trained. `out_dir` is replaced whole, atomically. Returns a report."""
    if llm.kind != "whisper_decoder":
        raise ConfigError("text_lm.llm.kind", llm.kind, "must be 'whisper_decoder' here")
    tokenizer = load_tokenizer(llm, [])
    model: Any = build_llm(llm, len(tokenizer))
    with atomic.atomic_dir(out_dir, overwrite=True) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    return {"pretrained": "whisper_decoder", "source": str(whisper_dir(llm)),
            "num_parameters": sum(p.numel() for p in model.parameters())}
