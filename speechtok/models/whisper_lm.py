"""Whisper's pretrained decoder as a causal LM every trainer family can use (`llm.kind: whisper_decoder`).

`WhisperDecoderLM` is `transformers.WhisperForCausalLM` (the decoder with its tied output layer)
plus one buffer, ``no_audio_memory`` `(1, M, D)` float32: what cross-attention sees when a caller
gives no memory. It is the pretrained encoder's output for 30 s of silence (digital zeros through
Whisper's own log-mel), ``M`` frames taken evenly over the window (``config.no_audio_frames``,
default 32 instead of 1500: silence states are nearly uniform, and a short memory keeps
cross-attention cheap). So the decoder runs as a pure text LM in the state it was trained in for
"no speech here", and a caller can still pass its own memory through ``encoder_outputs``
(`(B, T, D)`; the latent family's cross-attention variant), padded with ``no_audio_memory``
frames (what Whisper itself sees after the speech ends in a window; the decoder has no memory
mask).

Loss: with ``labels`` `(B, L)` int64 (-100 = ignored), the next-token cross-entropy of
``labels[:, 1:]`` given positions ``:-1``, the convention of `LlamaForCausalLM` (Whisper's own
`WhisperForCausalLM` does not shift); logits are then computed only at labelled positions (the
51,864-row output layer dominates the cost) and ``logits`` is None.

The config has its own ``model_type`` (``speechtok_whisper_decoder``), registered with
`AutoConfig` / `AutoModelForCausalLM` on import of this module, so ``save_pretrained`` output
loads back through `speechtok.trainers.llm.load_causal_lm` with its memory.

`whisper_tokenizer` reads ``tokenizer.json`` of the CTranslate2 directory, adds the 1,501
timestamp tokens (``<|0.00|>`` .. ``<|30.00|>``, so that ``len(tokenizer)`` equals the embedding
rows and new tokens go after them), and writes text as Whisper's decoder reads it: lower case
with a leading space (WER here is case-insensitive: `speechtok.trainers.metrics.normalize_text`).
``bos`` is ``<|notimestamps|>`` (the last prompt token before text; `sot_ids` gives the whole
prompt), ``eos`` and ``pad`` are ``<|endoftext|>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, normalizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast, WhisperConfig, WhisperForCausalLM
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions

from speechtok.errors import ConfigError, InputError
from speechtok.models.whisper_ct2 import load_whisper_ct2, read_specials
from speechtok.models.whisper_nbest import log_mel

NO_AUDIO_FRAMES = 32


class WhisperDecoderLMConfig(WhisperConfig):
    """`WhisperConfig` plus ``no_audio_frames`` (rows of the fixed no-audio memory) and
    ``max_position_embeddings`` (= ``max_target_positions``, the decoder's 448 positions)."""

    model_type = "speechtok_whisper_decoder"

    def __init__(self, no_audio_frames: int = NO_AUDIO_FRAMES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.no_audio_frames = no_audio_frames
        self.max_position_embeddings = self.max_target_positions  # what generic LM code reads


class WhisperDecoderLM(WhisperForCausalLM):
    """Whisper's decoder as a causal LM over `input_ids` or `inputs_embeds`; see the module docstring."""

    config_class = WhisperDecoderLMConfig
    no_audio_memory: torch.Tensor

    def __init__(self, config: WhisperDecoderLMConfig) -> None:
        super().__init__(config)
        frames = int(getattr(config, "no_audio_frames", NO_AUDIO_FRAMES))
        self.register_buffer("no_audio_memory", torch.zeros(1, frames, config.d_model), persistent=True)

    def memory(self, batch: int, states: torch.Tensor | None = None,
               lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-attention memory `(B, T, D)`: `states` `(B, T, D)` with frames past `lengths` `(B,)`
        replaced by no-audio frames, or the no-audio memory itself when `states` is None."""
        fixed = self.no_audio_memory.to(self.dtype)
        if states is None:
            return fixed.expand(batch, -1, -1)
        if lengths is None:
            return states
        t = states.shape[1]
        filler = fixed[0, torch.arange(t, device=states.device) % fixed.shape[1]]  # (T, D)
        keep = torch.arange(t, device=states.device)[None, :] < lengths[:, None]  # (B, T)
        return torch.where(keep[..., None], states, filler[None])

    def forward(self, input_ids: torch.Tensor | None = None,  # type: ignore[override]
                attention_mask: torch.Tensor | None = None, encoder_outputs: Any = None, past_key_values: Any = None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                use_cache: bool | None = None, cache_position: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, **_: Any) -> CausalLMOutputWithCrossAttentions:
        """`input_ids` `(B, L)` int64 or `inputs_embeds` `(B, L, D)`; `encoder_outputs` an optional
        memory `(B, T, D)` (or a tuple holding it); `labels` `(B, L)` int64 (unshifted, -100 ignored);
        `position_ids` `(B, L)` for left-padded rows (`generate` derives them from the mask)."""
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None:
            raise InputError("WhisperDecoderLM", "needs input_ids or inputs_embeds")
        memory: Any
        if encoder_outputs is None:
            memory = self.memory(ref.shape[0])
        else:
            memory = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs
            memory = getattr(memory, "last_hidden_state", memory)
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache()
        if past_key_values is not None and not isinstance(past_key_values, EncoderDecoderCache):
            # WhisperForCausalLM's config says "not encoder-decoder", so the decoder (and `generate`)
            # start a self-attention-only cache that its cross-attention layers cannot use
            past_key_values = EncoderDecoderCache(past_key_values, DynamicCache())
        out = self.model.decoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=memory,
                                 past_key_values=past_key_values, inputs_embeds=inputs_embeds,
                                 use_cache=bool(use_cache), cache_position=cache_position, position_ids=position_ids,
                                 return_dict=True)
        hidden = out.last_hidden_state  # (B, L, D)
        if labels is None:
            return CausalLMOutputWithCrossAttentions(logits=self.proj_out(hidden), past_key_values=out.past_key_values)
        target = labels[:, 1:].to(hidden.device)  # (B, L-1)
        sel = target != -100
        logits = self.proj_out(hidden[:, :-1][sel])  # (N, V), labelled positions only
        loss = F.cross_entropy(logits.float(), target[sel]) if bool(sel.any()) else hidden.sum() * 0.0
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=None,  # type: ignore[arg-type]
                                                 past_key_values=out.past_key_values)


AutoConfig.register(WhisperDecoderLMConfig.model_type, WhisperDecoderLMConfig)
AutoModelForCausalLM.register(WhisperDecoderLMConfig, WhisperDecoderLM)


def no_audio_states(full: Any, frames: int) -> torch.Tensor:
    """`(1, frames, D)` float32: the encoder of `full` (a `WhisperForConditionalGeneration`) on 30 s
    of silence, `frames` rows taken evenly over its 1500."""
    if frames < 1:
        raise ConfigError("llm.no_audio_frames", frames, "must be >= 1")
    feats = torch.from_numpy(log_mel(np.zeros(16000 * 30, np.float32), full.config.num_mel_bins))[None]
    with torch.no_grad():
        states = full.model.encoder(feats).last_hidden_state  # (1, 1500, D)
    idx = torch.linspace(0, states.shape[1] - 1, frames).round().long()
    return states[:, idx].float().contiguous()


def whisper_decoder_lm(model_dir: Path, *, no_audio_frames: int = NO_AUDIO_FRAMES) -> WhisperDecoderLM:
    """The pretrained decoder of a CTranslate2 Whisper directory as a `WhisperDecoderLM` (float32)."""
    full = load_whisper_ct2(model_dir)
    config = WhisperDecoderLMConfig(no_audio_frames=no_audio_frames, **full.config.to_diff_dict())
    config.architectures = ["WhisperDecoderLM"]
    lm = WhisperDecoderLM(config)
    lm.model.decoder.load_state_dict(full.model.decoder.state_dict(), strict=True)
    lm.tie_weights()
    lm.no_audio_memory.copy_(no_audio_states(full, no_audio_frames))
    return lm


def whisper_tokenizer(model_dir: Path) -> Any:
    """Whisper's BPE tokenizer (a `PreTrainedTokenizerFast`) with timestamp tokens, lower-casing and a
    leading space; see the module docstring."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise InputError(str(path), "missing; a CTranslate2 Whisper directory needs its tokenizer.json")
    core = Tokenizer.from_file(str(path))
    core.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Prepend(" ")])
    core.post_processor = None
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|notimestamps|>", eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    tok.add_tokens(stamps, special_tokens=True)
    return tok


def sot_ids(model_dir: Path) -> list[int]:
    """The transcription prompt of an English-only Whisper: ``<|startoftranscript|> <|notimestamps|>``."""
    s = read_specials(model_dir)
    return [s.sot, s.no_timestamps]
