"""N-best lists in the cascade: the records (`Hypothesis`, `NBestList`, their JSONL cache) are
`speechtok.models.nbest`, beside the decoders that make them; here is what the cascade does to them.
"""

from __future__ import annotations

from dataclasses import replace

from speechtok.errors import InputError
from speechtok.models.nbest import Hypothesis, NBestList
from speechtok.trainers.metrics import normalize_text

__all__ = ["merge_equivalent"]


def merge_equivalent(nbest: NBestList, key: str = "normalized") -> NBestList:
    """Merges hypotheses whose text is the same after normalisation, keeping the best-ranked.

    Whisper's n-best often differs only in case or punctuation ("Bill." vs "bill"), which the
    WER cannot see; merging keeps the first (highest-ranked) of each group and renumbers ranks.

    Args:
        nbest: the list to merge.
        key: ``"normalized"`` (`normalize_text`) or ``"exact"`` (identical strings only).
    """
    if key not in ("normalized", "exact"):
        raise InputError("key", f"must be 'normalized' or 'exact', not {key!r}")
    seen: set[str] = set()
    kept: list[Hypothesis] = []
    for h in nbest.hyps:
        k = normalize_text(h.text) if key == "normalized" else h.text
        if k in seen:
            continue
        seen.add(k)
        kept.append(replace(h, rank=len(kept)))
    return replace(nbest, hyps=tuple(kept))
