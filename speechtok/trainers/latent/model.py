"""Encoder + adapter + causal LM, joined through `inputs_embeds`.

Each training sequence is, in LLM embedding space::

    embed(prefix ids) | adapter(encoder(feats)) | embed(suffix ids) | embed(target ids + eos)
    loss only on the target ids and eos (labels -100 elsewhere)

where prefix/suffix come from the task prompt, e.g. ("<s>", "") then "|" for ASR: with a
character tokenizer the default prompt is `PROMPT_PREFIX` / `PROMPT_SUFFIX`. Speech-to-text
translation uses the same layout with the translation as target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechtok.trainers.latent.adapters import Adapter
from speechtok.trainers.latent.encoder import SpeechEncoder, ctc_loss


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
    """

    prefix: torch.Tensor
    suffix: torch.Tensor

    def __init__(
        self, encoder: SpeechEncoder, adapter: Adapter, llm: Any, *, prefix_ids: list[int], suffix_ids: list[int],
        eos_id: int, ctc_weight: float = 0.0, train_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.encoder, self.adapter, self.llm = encoder, adapter, llm
        self.register_buffer("prefix", torch.tensor(prefix_ids, dtype=torch.int64), persistent=False)
        self.register_buffer("suffix", torch.tensor(suffix_ids, dtype=torch.int64), persistent=False)
        self.eos_id, self.ctc_weight, self.train_encoder = eos_id, ctc_weight, train_encoder
        if not train_encoder:
            for p in encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> SpeechLLM:
        super().train(mode)
        if not self.train_encoder:
            self.encoder.eval()
        return self

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        emb: torch.Tensor = self.llm.get_input_embeddings()(ids)
        return emb

    def speech(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> adapter output `(B, T', H)`, its lengths, encoder output `(B, T'', dim)` and its lengths."""
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            h, hl = self.encoder(feats, lengths)
        y, yl = self.adapter(h, hl)
        return y, yl, h, hl

    def _splice(self, y: torch.Tensor, yl: torch.Tensor, targets: list[torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Builds right-padded `inputs_embeds (B, L, H)`, `attention_mask (B, L)`, `labels (B, L)`."""
        pre, suf = self._embed(self.prefix), self._embed(self.suffix)
        rows, labels = [], []
        for b in range(y.shape[0]):
            parts = [pre, y[b, : int(yl[b])], suf]
            lab = [torch.full((pre.shape[0] + int(yl[b]) + suf.shape[0],), -100, device=y.device)]
            if targets is not None:
                tgt = torch.cat([targets[b].to(y.device), torch.tensor([self.eos_id], device=y.device)])
                parts.append(self._embed(tgt))
                lab.append(tgt)
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

    def loss(self, batch: SpeechBatch) -> torch.Tensor:
        device = self.prefix.device
        feats, lengths = batch.feats.to(device), batch.lengths.to(device)
        y, yl, h, hl = self.speech(feats, lengths)
        emb, mask, labels = self._splice(y, yl, batch.targets)
        loss: torch.Tensor = self.llm(inputs_embeds=emb, attention_mask=mask, labels=labels).loss
        if self.ctc_weight > 0 and self.train_encoder:
            loss = loss + self.ctc_weight * ctc_loss(self.encoder.ctc_head(h), hl, batch.ctc_targets)
        return loss

    @torch.no_grad()
    def generate(self, feats: torch.Tensor, lengths: torch.Tensor, *, max_new_tokens: int, allowed: torch.Tensor | None = None) -> list[list[int]]:
        """Greedy decoding, one row at a time (no padding inside the prompt); ids without eos."""
        device = self.prefix.device
        y, yl, _, _ = self.speech(feats.to(device), lengths.to(device))
        out = []
        for b in range(y.shape[0]):
            emb, mask, _ = self._splice(y[b : b + 1], yl[b : b + 1], None)
            res = self.llm(inputs_embeds=emb, attention_mask=mask, use_cache=True)
            ids: list[int] = []
            for _ in range(max_new_tokens):
                logits = res.logits[0, -1]
                if allowed is not None:
                    logits = logits[: allowed.shape[0]].masked_fill(~allowed.to(device), float("-inf"))
                nxt = int(logits.argmax())
                if nxt == self.eos_id:
                    break
                ids.append(nxt)
                mask = torch.cat([mask, mask.new_ones(1, 1)], 1)
                res = self.llm(input_ids=torch.tensor([[nxt]], device=device), attention_mask=mask,
                               past_key_values=res.past_key_values, use_cache=True)
            out.append(ids)
        return out
