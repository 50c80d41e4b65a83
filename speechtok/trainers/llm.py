"""The causal LM every trainer family shares: a tiny Llama from a config, any local checkpoint, or
Whisper's pretrained decoder.

`load_tokenizer(cfg, text_corpus)` and `build_llm(cfg, vocab_rows)`:
- `cfg.kind == "whisper_decoder"`: Whisper tiny.en's pretrained decoder
  (`speechtok.models.whisper_lm.WhisperDecoderLM`, cross-attention on a fixed no-audio memory)
  and its BPE tokenizer, read from the CTranslate2 files in `cfg.path` or, when unset,
  `speechtok.paths.whisper_tiny_en_dir()`; embeddings grown to `vocab_rows` (text rows keep
  their pretrained weights).
- `cfg.path` set: `AutoTokenizer` / `AutoModelForCausalLM` from that local directory (a Qwen or
  Llama checkpoint; embeddings resized to `vocab_rows`); nothing is downloaded.
- otherwise: a character-level Hugging Face tokenizer built from `text_corpus` and a randomly
  initialised `LlamaForCausalLM` of the configured size (what runs on a laptop CPU).
`cfg.mode` picks full fine-tuning, LoRA through `peft`, or a frozen LM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechtok import hub
from speechtok.errors import ConfigError, InputError
from speechtok.paths import whisper_tiny_en_dir

MODES = ("full", "lora", "frozen")
KINDS = ("llama", "whisper_decoder")
CHAR_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """What LM to build and how to train it.

    Attributes:
        kind: "llama" (a tiny Llama from the sizes, or the checkpoint in `path`) or
            "whisper_decoder" (Whisper tiny.en's pretrained decoder; `path` may name another
            CTranslate2 Whisper directory; the sizes are ignored).
        path: local Hugging Face checkpoint directory; `None` builds a tiny Llama from the sizes.
        hidden_size, num_layers, num_heads, intermediate_size, max_positions: tiny Llama sizes.
        mode: "full" (all weights train), "lora" (peft adapters on `lora_targets`), "frozen".
        lora_r, lora_alpha, lora_dropout, lora_targets: LoRA hyper-parameters.
        dropout: attention dropout of the tiny Llama.
        no_audio_frames: whisper_decoder: rows of the fixed no-audio cross-attention memory.
    """

    kind: str = "llama"
    path: str | None = None
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 2048
    mode: str = "full"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    dropout: float = 0.0
    no_audio_frames: int = 32

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("llm.kind", self.kind, f"must be one of {KINDS}")
        if self.no_audio_frames < 1:
            raise ConfigError("llm.no_audio_frames", self.no_audio_frames, "must be >= 1")
        if self.mode not in MODES:
            raise ConfigError("llm.mode", self.mode, f"must be one of {MODES}")
        if self.path is None and self.hidden_size % self.num_heads:
            raise ConfigError("llm.hidden_size", self.hidden_size, f"must be a multiple of num_heads={self.num_heads}")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions", "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(f"llm.{name}", getattr(self, name), "must be >= 1")
        if self.path is not None and not Path(self.path).is_dir():
            raise ConfigError("llm.path", self.path, "must be a local checkpoint directory")
        if self.kind == "whisper_decoder" and self.path is not None and not (Path(self.path) / "model.bin").is_file():
            raise ConfigError("llm.path", self.path, "must be a CTranslate2 Whisper directory (model.bin) for "
                                                     "kind whisper_decoder, or unset for Whisper tiny.en")


def build_char_tokenizer(texts: Iterable[str]) -> Any:
    """A character-level `PreTrainedTokenizerFast`: ids 0-3 are `<pad> <unk> <s> </s>`, then the
    sorted characters of `texts`. Decoding joins characters without spaces in between."""
    # lazy: transformers takes seconds to import
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted({ch for t in texts for ch in t})
    vocab = {tok: i for i, tok in enumerate(CHAR_SPECIALS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def tiny_llama(cfg: LLMConfig, vocab_size: int) -> nn.Module:
    """A randomly initialised `LlamaForCausalLM` with `vocab_size` embedding rows."""
    # lazy: transformers takes seconds to import
    from transformers import LlamaConfig, LlamaForCausalLM

    # special ids: those of `build_char_tokenizer` (<pad> 0, <s> 2, </s> 3)
    conf = LlamaConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                       num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                       num_key_value_heads=cfg.num_heads, max_position_embeddings=cfg.max_positions,
                       attention_dropout=cfg.dropout, tie_word_embeddings=True, pad_token_id=0, bos_token_id=2,
                       eos_token_id=3)
    model: nn.Module = LlamaForCausalLM(conf)
    return model


def load_tokenizer(cfg: LLMConfig, text_corpus: Iterable[str]) -> Any:
    """The text tokenizer: Whisper's (kind whisper_decoder), from `cfg.path`, or a character
    tokenizer over `text_corpus`."""
    if cfg.kind == "whisper_decoder":
        # lazy: brings transformers, scipy, sklearn, librosa, pyarrow, which only this path needs
        from speechtok.models.whisper_lm import whisper_tokenizer

        return whisper_tokenizer(whisper_dir(cfg))
    if cfg.path is None:
        return build_char_tokenizer(text_corpus)
    # lazy: transformers takes seconds to import
    from transformers import AutoTokenizer

    return hub.from_pretrained(AutoTokenizer, cfg.path)


def build_llm(cfg: LLMConfig, vocab_rows: int, *, train_embeddings: bool = True) -> nn.Module:
    """The causal LM with `vocab_rows` embedding rows, with `cfg.mode` applied.

    A local checkpoint (a saved `WhisperDecoderLM` too) keeps its weights; its embeddings are
    resized to `vocab_rows` when they differ (new rows random, as after `VocabSpec.resize_model`).
    With LoRA and `train_embeddings`, the embeddings and the output layer stay trainable
    (`modules_to_save`) so that new speech tokens can be learnt; without, only the adapters train.
    """
    cfg.validate()
    model: Any
    if cfg.kind == "whisper_decoder":
        # lazy: brings transformers, scipy, sklearn, librosa, pyarrow, which only this path needs
        from speechtok.models.whisper_lm import whisper_decoder_lm

        model = whisper_decoder_lm(whisper_dir(cfg), no_audio_frames=cfg.no_audio_frames)
        if int(model.config.vocab_size) != vocab_rows:
            # new rows drawn around the pretrained rows' mean and covariance, so that new tokens start
            # near an average logit instead of far below the trained text (measured: with N(0, 0.02)
            # rows the first token-LM loss was 14.8 nats, above uniform's 10.9, and its gradients
            # wrecked the text rows in a few steps)
            model.resize_token_embeddings(vocab_rows, mean_resizing=True)
    elif cfg.path is None:
        model = tiny_llama(cfg, vocab_rows)
    else:
        # lazy: transformers takes seconds to import
        from transformers import AutoModelForCausalLM

        # lazy: brings transformers, scipy, sklearn, librosa, pyarrow; imported to register WhisperDecoderLM
        import speechtok.models.whisper_lm  # noqa: F401  (with the Auto classes)

        model = hub.from_pretrained(AutoModelForCausalLM, cfg.path, torch_dtype=torch.float32)
        rows = model.get_input_embeddings().weight.shape[0]  # type: ignore[index,operator]
        if int(rows) != vocab_rows:
            model.resize_token_embeddings(vocab_rows, mean_resizing=False)
    return apply_mode(model, cfg, train_embeddings=train_embeddings)


def position_limit(model: Any) -> int | None:
    """The longest sequence `model` can run: the size of its learned position table (Whisper's
    decoder: 448, its config's ``max_position_embeddings``), or None for rotary positions (a Llama
    runs past ``llm.max_positions``) or a model that names no limit."""
    cfg = getattr(model, "config", None)
    if cfg is None or hasattr(cfg, "rope_theta") or getattr(cfg, "rope_parameters", None):
        return None
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if n else None


def whisper_dir(cfg: LLMConfig) -> Path:
    """The CTranslate2 Whisper directory of a whisper_decoder config: `cfg.path`, else Whisper tiny.en."""
    return Path(cfg.path) if cfg.path is not None else whisper_tiny_en_dir()


def load_causal_lm(path: Path | str) -> Any:
    """A saved causal LM (`save_pretrained` directory) through `AutoModelForCausalLM`, local files only;
    speechtok's own classes (`WhisperDecoderLM`) are registered first."""
    # lazy: transformers takes seconds to import
    from transformers import AutoModelForCausalLM

    # lazy: brings transformers, scipy, sklearn, librosa, pyarrow; imported to register WhisperDecoderLM
    import speechtok.models.whisper_lm  # noqa: F401  (with the Auto classes)

    return hub.from_pretrained(AutoModelForCausalLM, str(path))


def apply_mode(model: nn.Module, cfg: LLMConfig, *, train_embeddings: bool) -> nn.Module:
    """Freezes the LM, wraps it with LoRA adapters, or leaves it fully trainable."""
    if cfg.mode == "full":
        return model
    if cfg.mode == "frozen":
        for p in model.parameters():
            p.requires_grad_(False)
        return model
    # lazy: peft (with transformers) takes seconds to import; only LoRA needs it
    from peft import LoraConfig, get_peft_model

    model_type = getattr(getattr(model, "config", None), "model_type", "")
    whisper = cfg.kind == "whisper_decoder" or model_type == "speechtok_whisper_decoder"
    saved = (["embed_tokens", "proj_out"] if whisper else ["embed_tokens", "lm_head"]) if train_embeddings else None
    targets = [("out_proj" if t == "o_proj" else t) if whisper else t for t in cfg.lora_targets]
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets,
                      modules_to_save=saved, task_type="CAUSAL_LM", ensure_weight_tying=saved is not None and tied)
    peft_model: nn.Module = get_peft_model(model, lora)  # type: ignore[arg-type]
    return peft_model


def special_ids(tokenizer: Any, where: str, need: str) -> tuple[int, int, int]:
    """(bos, eos, pad) ids of `tokenizer`; bos and pad default to eos. `InputError` at `where`
    when there is no eos token (`need`: what needs it)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError(where, f"has no eos token; {need}")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return int(bos), int(eos), int(pad)


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with `requires_grad`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def text_codec(tokenizer: Any) -> tuple[Callable[[str], list[int]], Callable[[list[int]], str]]:
    """(encode, decode) of a Hugging Face `tokenizer`: text -> ids without special tokens, and ids ->
    text without special tokens (ids the tokenizer does not have, e.g. speech rows, are skipped)."""
    size = len(tokenizer)

    def encode(text: str) -> list[int]:
        ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def decode(ids: list[int]) -> str:
        return str(tokenizer.decode([i for i in ids if 0 <= i < size], skip_special_tokens=True))

    return encode, decode


def causal_lm_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy of a Hugging Face causal LM over the labelled tokens of a
    collated batch (``input_ids``, ``attention_mask``, ``labels`` with -100 unscored); moves the
    batch to the model's device."""
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in batch.items()})
    loss: torch.Tensor = out.loss
    return loss
