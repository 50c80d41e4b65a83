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
    first: dict[str, Hypothesis] = {}  # key -> its best-ranked hypothesis, in rank order
    for h in nbest.hyps:
        first.setdefault(normalize_text(h.text) if key == "normalized" else h.text, h)
    return replace(nbest, hyps=tuple(replace(h, rank=r) for r, h in enumerate(first.values())))
