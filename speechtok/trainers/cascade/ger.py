"""Generative error correction (GER): a causal LM writes the transcription from the n-best.

Training examples are HyPoradise records (`speechtok.trainers.cascade.hyporadise`): the prompt
(`build_prompt`, H2T-LoRA's template or a short one) is context only (labels -100, unless
``train_on_inputs``), the normalised reference followed by ``</s>`` is what the model learns to
generate. Fine-tuning is full or LoRA (`peft`, on q/k/v/o projections; the adapter is merged
into the saved model so inference needs no peft). Inference is batched greedy decoding with
left padding; the answer is the generated text up to ``</s>`` or the first newline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechtok import atomic, hub
from speechtok.errors import ConfigError, InputError
from speechtok.trainers.cascade.hyporadise import PROMPTS, build_prompt
from speechtok.trainers.cascade.text_lm import TrainReport, train_causal_lm
from speechtok.trainers.llm import load_causal_lm

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GERConfig:
    """How to fine-tune and run a GER model (the cascade recipe's ``ger:`` section).

    `base_model` None: the cascade's own text LM (the run sets it); `enabled` is read by the
    cascade (train GER at all); `seed` and `device` default to the recipe's top-level values.
    """

    base_model: Path | None = None
    enabled: bool = True
    mode: str = "full"  # "full" | "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    prompt: str = "short"
    steps: int = 600
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.0
    train_on_inputs: bool = False
    max_new_tokens: int = 48
    infer_batch_size: int = 32
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if self.base_model is not None and not Path(self.base_model).is_dir():
            raise ConfigError("base_model", str(self.base_model), "must be a local Hugging Face causal LM directory")
        if self.mode not in ("full", "lora"):
            raise ConfigError("mode", self.mode, "must be 'full' or 'lora'")
        if self.prompt not in PROMPTS:
            raise ConfigError("prompt", self.prompt, f"must be one of {sorted(PROMPTS)}")
        for name in ("steps", "batch_size", "max_new_tokens", "infer_batch_size", "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not self.learning_rate > 0:
            raise ConfigError("learning_rate", self.learning_rate, "must be > 0")


def _special_ids(tokenizer: Any) -> tuple[int, int, int]:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("tokenizer", "has no eos token; GER needs one to stop generation")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return int(bos), int(eos), int(pad)


def make_examples(
    records: Sequence[dict[str, object]], tokenizer: Any, *, prompt: str, train_on_inputs: bool, max_length: int
) -> list[tuple[list[int], list[int]]]:
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


def train_ger(records: Sequence[dict[str, object]], out_dir: Path, config: GERConfig) -> TrainReport:
    """Fine-tunes `config.base_model` on HyPoradise `records`; saves the model to `out_dir`."""
    import torch
    from transformers import AutoTokenizer

    config.validate()
    if config.base_model is None:
        raise ConfigError("ger.base_model", None, "must be set before training (the cascade sets its text LM)")
    if not records:
        raise InputError("records", "is empty; GER needs training pairs")
    torch.manual_seed(config.seed)
    tokenizer = hub.from_pretrained(AutoTokenizer, str(config.base_model))
    model: Any = load_causal_lm(config.base_model)
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    if config.mode == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "out_proj" if model.config.model_type == "speechtok_whisper_decoder" else "o_proj",
            ],
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lcfg)
    examples = make_examples(
        records, tokenizer, prompt=config.prompt, train_on_inputs=config.train_on_inputs, max_length=max_len
    )
    _, _, pad = _special_ids(tokenizer)
    report = train_causal_lm(
        model,
        examples,
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        pad_id=pad,
        seed=config.seed,
        device=config.device,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.mode == "lora":
        model.save_pretrained(str(out_dir / "adapter"))
        model = model.merge_and_unload()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    atomic.write_text(out_dir / "ger_report.json",
                      json.dumps({"config": cfg, "report": asdict(report)}, indent=2) + "\n")
    return report


class GERModel:
    """A fine-tuned GER model for batched greedy correction."""

    def __init__(self, model_dir: Path, *, prompt: str = "short", device: str = "cpu") -> None:
        import torch
        from transformers import AutoTokenizer

        if prompt not in PROMPTS:
            raise ConfigError("prompt", prompt, f"must be one of {sorted(PROMPTS)}")
        self.torch = torch
        self.device = torch.device(device)
        self.tokenizer = hub.from_pretrained(AutoTokenizer, str(model_dir))
        model: Any = load_causal_lm(model_dir)
        self.model = model.to(self.device).eval()
        self.prompt = prompt
        self.bos, self.eos, self.pad = _special_ids(self.tokenizer)

    def correct(
        self, records: Sequence[dict[str, object]], *, batch_size: int = 32, max_new_tokens: int = 48
    ) -> list[str]:
        """The corrected transcription of each record (greedy, batched, left-padded)."""
        torch = self.torch
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
                gen = self.model.generate(
                    input_ids=torch.from_numpy(ids).to(self.device),  # (B, T)
                    attention_mask=torch.from_numpy(mask).to(self.device),  # (B, T)
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=self.pad,
                    eos_token_id=self.eos,
                )
            new = gen[:, width:].cpu().numpy()  # (B, <= max_new_tokens)
            for r, i in enumerate(idx):
                toks = [int(t) for t in new[r]]
                if self.eos in toks:
                    toks = toks[: toks.index(self.eos)]
                text = self.tokenizer.decode(toks, skip_special_tokens=True)
                answers[i] = text.split("\n", 1)[0].strip()
        return answers
