"""CTC forced alignment of words on a hand-made posterior sequence."""

from __future__ import annotations

import pytest
import torch

from speechtok.errors import InputError
from speechtok.models.ctc_align import as_alignment_column, ctc_word_alignment

LABELS = {"H": 1, "I": 2, "Y": 3, "O": 4, "U": 5, " ": 6}


def _posteriors(frames: str) -> torch.Tensor:
    """One frame per character of `frames` ('_' = blank), sharp but not one-hot."""
    lp = torch.full((len(frames), 7), -8.0)
    for t, ch in enumerate(frames):
        lp[t, 0 if ch == "_" else LABELS[ch]] = 0.0
    return lp.log_softmax(-1)


def test_words_get_their_frames() -> None:
    #         0123456789012345
    frames = "__HHI__ _YYOU___"
    words = ctc_word_alignment(_posteriors(frames), ["HI", "YOU"], lambda w: [LABELS[c] for c in w],
                               frame_rate=10.0, separator=LABELS[" "])
    assert [w for w, _, _ in words] == ["HI", "YOU"]
    (_, s1, d1), (_, s2, d2) = words
    assert (s1, d1) == pytest.approx((0.2, 0.3))  # frames 2..4
    assert (s2, d2) == pytest.approx((0.9, 0.4))  # frames 9..12
    col = as_alignment_column(words)
    assert col[1] == {"word": "YOU", "start": pytest.approx(0.9), "duration": pytest.approx(0.4)}


def test_alignment_errors() -> None:
    with pytest.raises(InputError, match="do not fit"):
        ctc_word_alignment(_posteriors("HI"), ["HI", "YOU"], lambda w: [LABELS[c] for c in w], frame_rate=10.0)
    with pytest.raises(InputError, match="no blank"):
        ctc_word_alignment(_posteriors("HI__"), ["HI"], lambda w: [0], frame_rate=10.0)
