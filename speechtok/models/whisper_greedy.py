"""Greedy Whisper transcription in torch, the way CTranslate2's ``generate(beam_size=1)`` does it.

Log-mel: `speechtok.models.whisper_nbest.log_mel`, one 30 s window ``(n_mels, 3000)`` float32 (what
CTranslate2 is fed).
Decoding starts from the prompt (``<|startoftranscript|>`` [``<|en|> <|transcribe|>``]
``<|notimestamps|>``), masks the model's ``suppress_tokens`` at every step, its
``begin_suppress_tokens`` (blank and end-of-text) at the first step, and timestamp tokens
(ids above ``<|notimestamps|>``), and stops at end-of-text or ``max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def prompt_ids(model: Any, specials: Any) -> list[int]:
    """The transcription prompt of `model` (English, no timestamps)."""
    ids = [specials.sot]
    if model.config.vocab_size >= 51865 and specials.english is not None:  # multilingual vocabulary
        ids += [specials.english, specials.transcribe]
    return [*ids, specials.no_timestamps]


def _mask(model: Any, no_timestamps: int) -> tuple[torch.Tensor, torch.Tensor]:
    vocab = int(model.config.vocab_size)
    every = torch.zeros(vocab, dtype=torch.bool)
    every[[i for i in (model.config.suppress_tokens or []) if 0 <= i < vocab]] = True
    every[no_timestamps + 1 :] = True
    first = every.clone()
    first[[i for i in (model.config.begin_suppress_tokens or []) if 0 <= i < vocab]] = True
    return every, first


@torch.no_grad()
def greedy_ids(model: Any, feats: torch.Tensor, prompt: Sequence[int], *, eot: int,
               max_new_tokens: int = 200) -> list[list[int]]:
    """Greedy token ids (prompt and end-of-text excluded) of a batch of windows.

    Args:
        model: a `WhisperForConditionalGeneration` in eval mode.
        feats: `(B, n_mels, 3000)` float32 log-mel.
        prompt: decoder prompt ids.
        eot: end-of-text id.
        max_new_tokens: at most this many tokens per window.

    Returns:
        One list of ids per window.
    """
    batch = feats.shape[0]
    enc = model.model.encoder(feats.to(model.device)).last_hidden_state  # (B, 1500, D)
    every, first = (m.to(model.device) for m in _mask(model, prompt[-1]))
    tokens = torch.tensor([list(prompt)] * batch, device=model.device)  # (B, P)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=model.device)
    past = None
    step_input = tokens
    for step in range(max_new_tokens):
        res = model(encoder_outputs=(enc,), decoder_input_ids=step_input, past_key_values=past, use_cache=True)
        past = res.past_key_values
        logits = res.logits[:, -1].float()  # (B, V)
        logits = logits.masked_fill(first if step == 0 else every, float("-inf"))
        nxt = logits.argmax(-1)  # (B,)
        for b in range(batch):
            if not done[b] and int(nxt[b]) != eot:
                out[b].append(int(nxt[b]))
        done |= nxt == eot
        if bool(done.all()):
            break
        step_input = nxt[:, None]
    return out
