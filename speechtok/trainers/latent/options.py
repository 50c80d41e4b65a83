"""The latent family's own options and how a row's target text is read (train and decode share them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class LatentOptions:
    """Attributes:
    encoder_from: a run directory whose stage-1 encoder to load (skips stage 1).
    train_encoder: fine-tune the encoder in stage 2. ctc_weight: CTC loss weight then.
    prompt_suffix: text placed between the speech embeddings and the target.
    eval_utts, max_new_tokens: dev utterances decoded and the length limit.
    speech_into: "prefix" (adapter outputs in the LM's input sequence, through `inputs_embeds`) or
        "memory" (adapter outputs as cross-attention memory; needs ``llm.kind: whisper_decoder``).
    """

    encoder_from: str | None = None
    train_encoder: bool = False
    ctc_weight: float = 0.0
    prompt_suffix: str = ""
    eval_utts: int = 100
    max_new_tokens: int = 120
    speech_into: str = "prefix"


def target_text_or_none(row: Mapping[str, Any], target: str) -> str | None:
    """`target_text`, or None when the row has no such text (a missing label, not an empty one)."""
    if not target.startswith("custom."):
        value = row.get(target)
        return None if value is None else str(value)
    cut = row.get("cut")
    sups = (json.loads(cut) if isinstance(cut, str) else (cut or {})).get("supervisions") or [{}]
    got = (sups[0].get("custom") or {}).get(target.split(".", 1)[1])
    return None if got is None else str(got)


def target_text(row: Mapping[str, Any], target: str) -> str:
    """The target of a cuts row: a cuts column (``text``), or ``custom.KEY``, a custom field of
    the cut's first supervision (read from the ``cut`` JSON; e.g. a translation kept by ingest);
    "" when the row has none."""
    return target_text_or_none(row, target) or ""
