"""A small Llama-architecture causal LM trained here on text, for rescoring and as the GER base.

No pretrained text LM can be downloaded on this machine, so the cascade trains its own: a
byte-level BPE tokenizer (`tokenizers`, so every string is encodable) and a `LlamaForCausalLM`
from a `TextLMConfig`, both saved with ``save_pretrained`` so `HFCausalLMScorer` and
`AutoModelForCausalLM.from_pretrained` load them like any Hugging Face checkpoint. A real
pretrained LM (a local directory) can replace it in the recipe without code changes.

The training loop (`train_causal_lm`) is shared with GER fine-tuning: examples are token-id
lists with per-token labels (-100 = not in the loss), batched with right padding.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechtok import atomic
from speechtok.errors import ConfigError, InputError

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")


@dataclass(frozen=True, kw_only=True)
class TextLMConfig:
    """Tokenizer, architecture and optimisation of the small text LM.

    ``kind: whisper_decoder`` replaces it with Whisper tiny.en's pretrained decoder
    (`save_whisper_text_lm`, not trained here: its log-probabilities rescore, and GER fine-tunes
    from it); the other fields then only matter to GER's optimiser.
    """

    kind: str = "llama"
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 384
    max_length: int = 256
    steps: int = 600
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if self.kind not in ("llama", "whisper_decoder"):
            raise ConfigError("kind", self.kind, "must be 'llama' or 'whisper_decoder'")
        positive = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                    "max_length", "steps", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.vocab_size < 260:
            raise ConfigError("vocab_size", self.vocab_size, "must be >= 260 (256 bytes + specials)")
        if self.hidden_size % self.num_heads:
            raise ConfigError("num_heads", self.num_heads, f"must divide hidden_size={self.hidden_size}")
        if not self.learning_rate > 0:
            raise ConfigError("learning_rate", self.learning_rate, "must be > 0")
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", self.warmup_steps, "must be >= 0")


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts` (bos ``<s>``, eos ``</s>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise InputError("texts", "is empty; the tokenizer needs some training text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def build_model(config: TextLMConfig, vocab_size: int) -> Any:
    """A randomly initialised `LlamaForCausalLM` of `config`'s size."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_length,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg)


@dataclass(frozen=True, kw_only=True)
class TrainReport:
    """What a training run did."""

    steps: int
    examples: int
    first_loss: float
    final_loss: float
    wall_s: float
    num_parameters: int


def train_causal_lm(
    model: Any,
    examples: Sequence[tuple[list[int], list[int]]],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    pad_id: int = 0,
    seed: int = 0,
    device: str = "cpu",
    log_every: int = 50,
) -> TrainReport:
    """Trains `model` on (input_ids, labels) examples: AdamW, linear warm-up, cosine decay.

    Args:
        examples: per example, token ids `(T,)` and labels `(T,)` (-100 = ignored); batches
            are sampled without replacement per epoch and right-padded.
    """
    import torch

    if not examples:
        raise InputError("examples", "is empty; nothing to train on")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    dev = torch.device(device)
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return learning_rate * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(steps - warmup_steps, 1)
        return learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    order: list[int] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(steps):
        if len(order) < batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order += fresh
        idx, order = order[:batch_size], order[batch_size:]
        width = max(len(examples[i][0]) for i in idx)
        ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        labels = np.full((len(idx), width), -100, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            x, y = examples[i]
            ids[r, : len(x)] = x
            labels[r, : len(y)] = y
            mask[r, : len(x)] = 1
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(
            input_ids=torch.from_numpy(ids).to(dev),  # (B, T)
            attention_mask=torch.from_numpy(mask).to(dev),  # (B, T)
            labels=torch.from_numpy(labels).to(dev),  # (B, T)
        )
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(out.loss.detach()))
        if log_every and (step % log_every == 0 or step == steps - 1):
            log.info("step %d/%d loss %.4f lr %.2e", step + 1, steps, losses[-1], lr_at(step))
    model.eval()
    tail = losses[-max(1, min(20, len(losses))) :]
    return TrainReport(
        steps=steps,
        examples=len(examples),
        first_loss=losses[0],
        final_loss=float(np.mean(tail)),
        wall_s=time.perf_counter() - t0,
        num_parameters=sum(p.numel() for p in model.parameters()),
    )


def train_text_lm(
    texts: Sequence[str],
    out_dir: Path,
    config: TextLMConfig,
    *,
    tokenizer_texts: Sequence[str] | None = None,
) -> TrainReport:
    """Trains a tokenizer and a small Llama LM on `texts` (one sentence each); saves to `out_dir`.

    Args:
        texts: training sentences (already normalised as the scorer will see them).
        out_dir: gets ``config.json``, ``model.safetensors``, the tokenizer files and
            ``train_report.json``.
        tokenizer_texts: extra text for the BPE merges only (e.g. GER prompts), not for the LM.
    """
    config.validate()
    texts = [t for t in texts if t.strip()]
    tokenizer = train_tokenizer([*texts, *(tokenizer_texts or [])], config.vocab_size)
    ids_of = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if ids_of != [0, 1, 2]:
        raise InputError("tokenizer", f"special tokens got ids {ids_of}, expected [0, 1, 2]")
    model = build_model(config, len(tokenizer))
    examples = []
    for t in texts:
        ids = [1, *tokenizer(t, add_special_tokens=False)["input_ids"], 2][: config.max_length]
        examples.append((ids, list(ids)))
    report = train_causal_lm(
        model,
        examples,
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        seed=config.seed,
        device=config.device,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    atomic.write_text(out_dir / "train_report.json",
        json.dumps({"config": asdict(config), "report": asdict(report)}, indent=2) + "\n"
    )
    return report


def save_whisper_text_lm(out_dir: Path, model_dir: Path | None = None) -> dict[str, Any]:
    """Writes Whisper's pretrained decoder (`speechtok.models.whisper_lm.WhisperDecoderLM`) and its
    tokenizer to `out_dir` with ``save_pretrained`` (loadable by `speechtok.trainers.llm.load_causal_lm`);
    `model_dir` is a CTranslate2 Whisper directory, Whisper tiny.en when None. Returns a report."""
    from speechtok.models.whisper_lm import whisper_decoder_lm, whisper_tokenizer
    from speechtok.paths import whisper_tiny_en_dir

    source = Path(model_dir) if model_dir is not None else whisper_tiny_en_dir()
    model = whisper_decoder_lm(source)
    tokenizer = whisper_tokenizer(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    return {"pretrained": "whisper_decoder", "source": str(source),
            "params": sum(p.numel() for p in model.parameters())}
