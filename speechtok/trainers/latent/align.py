"""Word alignments offline: CTC forced alignment with the latent family's CTC encoder.

`ctc_word_alignment(log_probs, words, encode_word, separator, frame_rate)` aligns a known
transcript to CTC posteriors (torchaudio's `forced_align`, Viterbi over the CTC graph) and
returns `[(word, start_s, duration_s)]`, the format of the shards' `alignment` column
(`[{"word", "start", "duration"}]`, see `as_alignment_column`) that Spirit-LM interleaving reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from speechtok.errors import InputError


def ctc_word_alignment(
    log_probs: torch.Tensor,
    words: Sequence[str],
    encode_word: Callable[[str], list[int]],
    *,
    frame_rate: float,
    separator: int | None = None,
    blank: int = 0,
) -> list[tuple[str, float, float]]:
    """Aligns `words` to `(T, V)` CTC log-posteriors at `frame_rate` frames per second.

    Args:
        encode_word: word -> CTC label ids (>= 1, never `blank`).
        separator: label between words (e.g. the space character), or None.
    Returns:
        `(word, start_s, duration_s)` per word, in order; a word spans from its first label's
        first frame to its last label's last frame.
    """
    import torchaudio.functional as F

    targets: list[int] = []
    owner: list[int] = []  # word index of each target label, -1 for separators
    for k, w in enumerate(words):
        if k and separator is not None:
            targets.append(separator)
            owner.append(-1)
        labels = encode_word(w)
        if not labels or blank in labels:
            raise InputError(f"word {w!r}", f"encodes to {labels}: needs >= 1 label and no blank ({blank})")
        targets += labels
        owner += [k] * len(labels)
    lp = log_probs.float().log_softmax(-1)[None]  # (1, T, V)
    if len(targets) > lp.shape[1]:
        raise InputError("alignment", f"{len(targets)} labels do not fit in {lp.shape[1]} frames")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path, scores = F.forced_align(lp, torch.tensor([targets], dtype=torch.int32), blank=blank)
        spans = F.merge_tokens(path[0], scores[0].exp(), blank=blank)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for span, k in zip(spans, owner, strict=True):
        if k >= 0:
            first.setdefault(k, span.start)
            last[k] = span.end
    return [(w, first[k] / frame_rate, (last[k] - first[k]) / frame_rate) for k, w in enumerate(words)]


def as_alignment_column(words: Sequence[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """`[(word, start, duration)]` -> the shards' alignment column value `[{word, start, duration}]`."""
    return [{"word": w, "start": float(s), "duration": float(d)} for w, s, d in words]
