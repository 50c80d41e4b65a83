"""Encoder + adapter + causal LM, joined through `inputs_embeds`.

Each training sequence is, in LLM embedding space::

    embed(prefix ids) | adapter(encoder(feats)) | embed(suffix ids) | embed(target ids + eos)
    loss only on the target ids and eos (labels -100 elsewhere)

where prefix/suffix come from the task prompt, e.g. ("<s>", "") then "|" for ASR: with a
character tokenizer the default prompt is `PROMPT_PREFIX` / `PROMPT_SUFFIX`. Speech-to-text
translation uses the same layout with the translation as target.

``speech_into="memory"`` (an LM with cross-attention: `speechtok.models.whisper_lm.WhisperDecoderLM`)
keeps the speech out of the sequence and gives it to cross-attention instead::

    sequence: embed(prefix ids) | embed(suffix ids) | embed(target ids + eos)
    memory:   adapter(encoder(feats))  (B, T', H), padded with the LM's no-audio frames

The decoder has no memory mask (Whisper never needed one: it always sees 30 s, silence after the
speech), so a row padded to a longer row's length sees a few no-audio frames more; `generate`
pads the same way as training (to the longest row of its batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechtok.errors import ConfigError, InputError
from speechtok.models.encoder import SpeechEncoder, ctc_loss
from speechtok.trainers.latent.adapter_base import Adapter
from speechtok.trainers.llm import position_limit


@dataclass
class SpeechBatch:
    """A padded batch: `feats` `(B, T, D)` float32, `lengths` `(B,)` int64, `targets` list of `(N_i,)`
    int64 LLM ids (transcript or translation), `ctc_targets` list of `(M_i,)` int64 CTC labels (>= 1)."""

    feats: torch.Tensor
    lengths: torch.Tensor
    targets: list[torch.Tensor]
    ctc_targets: list[torch.Tensor]
    texts: list[str]


class SpeechLLM(nn.Module):
    """`loss(batch)` for training, `generate(feats, lengths)` for greedy decoding.

    Args:
        prefix_ids, suffix_ids: prompt ids placed before / after the speech embeddings.
        eos_id: id that ends a target. ctc_weight: weight of the encoder's CTC loss (0 = off).
        train_encoder: False keeps the encoder frozen (no gradients, eval mode).
        speech_into: "prefix" (speech embeddings in the sequence) or "memory" (cross-attention).
    """

    prefix: torch.Tensor
    suffix: torch.Tensor

    def __init__(self, encoder: SpeechEncoder, adapter: Adapter, llm: Any, *, prefix_ids: list[int],
                 suffix_ids: list[int], eos_id: int, ctc_weight: float = 0.0, train_encoder: bool = False,
                 speech_into: str = "prefix") -> None:
        super().__init__()
        if speech_into not in ("prefix", "memory"):
            raise ConfigError("latent.speech_into", speech_into, "must be 'prefix' or 'memory'")
        self.speech_into = speech_into
        self.encoder, self.adapter, self.llm = encoder, adapter, llm
        if speech_into == "memory" and not hasattr(self._base_llm(), "memory"):
            raise ConfigError("latent.speech_into", speech_into,
                              "needs an LM with cross-attention (llm.kind: whisper_decoder)")
        self.register_buffer("prefix", torch.tensor(prefix_ids, dtype=torch.int64), persistent=False)
        self.register_buffer("suffix", torch.tensor(suffix_ids, dtype=torch.int64), persistent=False)
        self.eos_id, self.ctc_weight, self.train_encoder = eos_id, ctc_weight, train_encoder
        self.max_positions = position_limit(self._base_llm())  # None: no limit known
        if not train_encoder:
            for p in encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> SpeechLLM:
        super().train(mode)
        if not self.train_encoder:
            self.encoder.eval()
        return self

    def _base_llm(self) -> Any:
        """The LM under a peft (LoRA) wrapper, or the LM itself."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        emb: torch.Tensor = self.llm.get_input_embeddings()(ids)
        return emb

    def speech(self, feats: torch.Tensor,
               lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> adapter output `(B, T', H)`, its lengths, encoder output `(B, T'', dim)` and its lengths."""
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            h, hl = self.encoder(feats, lengths)
        y, yl = self.adapter(h, hl)
        return y, yl, h, hl

    def _splice(self, y: torch.Tensor, yl: torch.Tensor,
                targets: list[torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Builds right-padded `inputs_embeds (B, L, H)`, `attention_mask (B, L)`, `labels (B, L)`.

        Every id of the batch (prompt, targets + eos) goes through the embedding table in one call:
        each call's backward is a dense gradient of the whole table (51,864 x 384 for Whisper's
        decoder), so one call per row made the backward pass several times slower than the forward."""
        eos = torch.tensor([self.eos_id], device=y.device)
        tgts = [] if targets is None else [torch.cat([t.to(y.device), eos]) for t in targets]
        ids = torch.cat([self.prefix, self.suffix, *tgts])
        table = self._embed(ids).split([self.prefix.shape[0], self.suffix.shape[0], *(t.shape[0] for t in tgts)])
        pre, suf, tgt_emb = table[0], table[1], table[2:]
        rows, labels = [], []
        for b in range(y.shape[0]):
            speech = y[b, : int(yl[b])] if self.speech_into == "prefix" else y[b, :0]
            parts = [pre, speech, suf]
            lab = [torch.full((pre.shape[0] + speech.shape[0] + suf.shape[0],), -100, device=y.device)]
            if tgts:
                parts.append(tgt_emb[b])
                lab.append(tgts[b])
            rows.append(torch.cat(parts))
            labels.append(torch.cat(lab))
        n = max(r.shape[0] for r in rows)
        emb = y.new_zeros(len(rows), n, y.shape[-1])
        mask = torch.zeros(len(rows), n, dtype=torch.int64, device=y.device)
        lab_t = torch.full((len(rows), n), -100, dtype=torch.int64, device=y.device)
        for b, (r, lb) in enumerate(zip(rows, labels, strict=True)):
            emb[b, : r.shape[0]] = r
            mask[b, : r.shape[0]] = 1
            lab_t[b, : lb.shape[0]] = lb
        return emb, mask, lab_t

    def too_long(self, mask: torch.Tensor, *, room: int = 0) -> torch.Tensor:
        """`(B,)` bool: the rows of `mask` `(B, L)` whose sequence (+ `room` positions more) does not
        fit the LM's learned positions (Whisper's decoder: 448); all False without such a limit.
        Their length depends on the adapter's output length, known only after the adapter ran."""
        limit = self.max_positions
        n = mask.sum(1)
        return n + room > limit if limit is not None else torch.zeros_like(n, dtype=torch.bool)

    def _too_long_error(self, mask: torch.Tensor, texts: list[str]) -> InputError:
        """The `InputError` naming the longest row of `mask` `(B, L)` (strict callers: no `left_out`)."""
        n = [int(v) for v in mask.sum(1).tolist()]
        b = max(range(len(n)), key=n.__getitem__)
        return InputError(f"utterance {texts[b][:80]!r}" if b < len(texts) else "utterance",
                          f"speech + prompt + target take {n[b]} positions, more than the LM's {self.max_positions} "
                          "learned positions (Whisper's decoder); leave such long utterances out of the "
                          "corpus or use a Llama (llm.kind: llama)")

    def _memory(self, y: torch.Tensor, yl: torch.Tensor) -> dict[str, Any]:
        """`encoder_outputs` for the LM call: the adapter output `(B, T', H)` in memory mode, else nothing."""
        if self.speech_into == "prefix":
            return {}
        return {"encoder_outputs": (self._base_llm().memory(y.shape[0], y, yl),)}

    def loss(self, batch: SpeechBatch, left_out: list[str] | None = None) -> torch.Tensor:
        """Mean next-token loss of the targets (+ `ctc_weight` x the encoder's CTC loss).

        A row whose sequence is longer than the LM's learned positions (`too_long`) is dropped from
        the batch and its text appended to `left_out`; a batch left with no row gives a zero loss
        that reaches no parameter (the step changes nothing). With `left_out` None such a row is
        an `InputError` naming it."""
        device = self.prefix.device
        feats, lengths = batch.feats.to(device), batch.lengths.to(device)
        y, yl, h, hl = self.speech(feats, lengths)
        emb, mask, labels = self._splice(y, yl, batch.targets)
        drop = self.too_long(mask)
        ctc_targets = batch.ctc_targets
        if bool(drop.any()):
            if left_out is None:
                raise self._too_long_error(mask, batch.texts)
            left_out.extend(t for t, d in zip(batch.texts, drop.tolist(), strict=True) if d)
            keep = ~drop
            if not bool(keep.any()):
                return torch.zeros((), device=device, requires_grad=True)
            n = int(mask[keep].sum(1).max())
            emb, mask, labels = emb[keep, :n], mask[keep, :n], labels[keep, :n]  # (B', L', H), (B', L')
            y, yl, h, hl = y[keep], yl[keep], h[keep], hl[keep]
            ctc_targets = [t for t, k in zip(ctc_targets, keep.tolist(), strict=True) if k]
        loss: torch.Tensor = self.llm(inputs_embeds=emb, attention_mask=mask, labels=labels, **self._memory(y, yl)).loss
        if self.ctc_weight > 0 and self.train_encoder:
            loss = loss + self.ctc_weight * ctc_loss(self.encoder.ctc_head(h), hl, ctc_targets)
        return loss

    @torch.no_grad()
    def generate(self, feats: torch.Tensor, lengths: torch.Tensor, *, max_new_tokens: int,
                 allowed: torch.Tensor | None = None, left_out: list[int] | None = None) -> list[list[int]]:
        """Greedy decoding, one row at a time (no padding inside the prompt); ids without eos.

        A row whose prompt (speech + prompt ids) leaves no position of the LM's learned ones for a
        token is not decoded: its index is appended to `left_out` and its ids are ``[]``; with
        `left_out` None it is an `InputError`."""
        device = self.prefix.device
        y, yl, _, _ = self.speech(feats.to(device), lengths.to(device))
        # memory mode: rows padded with no-audio frames to the batch's longest, as in training
        memory_all = self._memory(y, yl).get("encoder_outputs")
        out: list[list[int]] = []
        for b in range(y.shape[0]):
            emb, mask, _ = self._splice(y[b : b + 1], yl[b : b + 1], None)
            if bool(self.too_long(mask, room=1)[0]):
                if left_out is None:
                    raise self._too_long_error(mask, [])
                left_out.append(b)
                out.append([])
                continue
            steps = max_new_tokens if self.max_positions is None else min(max_new_tokens,
                                                                            self.max_positions - mask.shape[1])
            memory = {} if memory_all is None else {"encoder_outputs": (memory_all[0][b : b + 1],)}
            res = self.llm(inputs_embeds=emb, attention_mask=mask, use_cache=True, **memory)
            ids: list[int] = []
            for _ in range(steps):
                logits = res.logits[0, -1]
                if allowed is not None:
                    logits = logits[: allowed.shape[0]].masked_fill(~allowed.to(device), float("-inf"))
                nxt = int(logits.argmax())
                if nxt == self.eos_id:
                    break
                ids.append(nxt)
                mask = torch.cat([mask, mask.new_ones(1, 1)], 1)
                res = self.llm(input_ids=torch.tensor([[nxt]], device=device), attention_mask=mask,
                               past_key_values=res.past_key_values, use_cache=True, **memory)
            out.append(ids)
        return out
