"""Word and character error rates, and the one text normaliser every speechtok trainer uses.

Normalisation (`normalize_text`), applied to references and hypotheses alike before scoring:

1. Unicode NFKC, then lower case; control characters become spaces;
2. typographic apostrophes (U+2018, U+2019, U+02BC) become ``'``;
3. a comma between digits is dropped (``1,000`` -> ``1000``), a period between digits is kept
   (``3.5`` stays ``3.5``); numbers are otherwise left as they are (no digit <-> word rewriting);
4. every other character that is not a letter, a digit, an apostrophe or white space becomes a
   space (so ``twenty-one`` -> ``twenty one``, ``Bill.`` -> ``bill``);
5. apostrophes at the start or end of a word are removed (quotes), inner ones kept (``don't``);
6. white space is collapsed to single spaces and stripped.

Error rates are corpus-level: the sum of edit distances over the sum of reference lengths
(``editdistance``, Levenshtein with unit costs). A reference with no words still counts its
hypothesis words as insertions; a corpus whose references hold no words at all has rate 0.0 if
there are no errors and ``inf`` otherwise.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import editdistance

from speechtok.errors import InputError

_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc]")
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_DIGIT_PERIOD = re.compile(r"(?<=\d)\.(?=\d)")
_PLACEHOLDER = "\u0000"
_NOT_WORD = re.compile(r"[^\w\s'\u0000]|_")
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'+|'+(?!\w)")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Returns `text` normalised for scoring (see the module docstring for the exact rules).

    >>> normalize_text("  We call it Bill.  ")
    'we call it bill'
    >>> normalize_text("Don't say 'twenty-one', say 1,000 or 3.5!")
    "don't say twenty one say 1000 or 3.5"
    """
    out = _CONTROL.sub(" ", unicodedata.normalize("NFKC", text).lower())
    out = _APOSTROPHES.sub("'", out)
    out = _DIGIT_COMMA.sub("", out)
    out = _DIGIT_PERIOD.sub(_PLACEHOLDER, out)
    out = _NOT_WORD.sub(" ", out)
    out = _EDGE_APOSTROPHE.sub("", out)
    out = out.replace(_PLACEHOLDER, ".")
    return _SPACES.sub(" ", out).strip()


@dataclass(frozen=True, kw_only=True)
class ErrorRate:
    """Edit errors over reference units (words for WER, characters for CER).

    Attributes:
        errors: total edit distance (substitutions + deletions + insertions).
        ref_units: total reference length (words or characters).
        num_utts: number of (reference, hypothesis) pairs scored.
    """

    errors: int
    ref_units: int
    num_utts: int

    @property
    def rate(self) -> float:
        """errors / ref_units; 0.0 when both are 0, ``inf`` when only ref_units is 0."""
        if self.ref_units == 0:
            return 0.0 if self.errors == 0 else math.inf
        return self.errors / self.ref_units

    def __add__(self, other: ErrorRate) -> ErrorRate:
        return ErrorRate(errors=self.errors + other.errors, ref_units=self.ref_units + other.ref_units,
                         num_utts=self.num_utts + other.num_utts)


def _check_pairs(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if isinstance(refs, str) or isinstance(hyps, str):
        raise InputError("refs/hyps", "pass sequences of strings (one per utterance), not a str")
    if len(refs) != len(hyps):
        raise InputError("refs/hyps", f"there are {len(refs)} references but {len(hyps)} hypotheses; pass one each")


def word_errors(ref: str, hyp: str, *, normalize: bool = True) -> tuple[int, int]:
    """Returns (word edit distance, reference word count) of one pair."""
    if normalize:
        ref, hyp = normalize_text(ref), normalize_text(hyp)
    r, h = ref.split(), hyp.split()
    return int(editdistance.eval(r, h)), len(r)


def char_errors(ref: str, hyp: str, *, normalize: bool = True) -> tuple[int, int]:
    """Returns (character edit distance, reference character count) of one pair.

    Characters of the normalised text, single spaces between words included.
    """
    if normalize:
        ref, hyp = normalize_text(ref), normalize_text(hyp)
    return int(editdistance.eval(ref, hyp)), len(ref)


def wer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> ErrorRate:
    """Corpus word error rate of aligned `refs` and `hyps` (one string per utterance)."""
    return _corpus_rate(refs, hyps, word_errors, normalize)


def cer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> ErrorRate:
    """Corpus character error rate of aligned `refs` and `hyps`."""
    return _corpus_rate(refs, hyps, char_errors, normalize)


def _corpus_rate(refs: Sequence[str], hyps: Sequence[str], errors_of: Callable[..., tuple[int, int]],
                 normalize: bool) -> ErrorRate:
    """`errors_of` (`word_errors` or `char_errors`) summed over aligned pairs."""
    _check_pairs(refs, hyps)
    counts = [errors_of(ref, hyp, normalize=normalize) for ref, hyp in zip(refs, hyps, strict=True)]
    return ErrorRate(errors=sum(e for e, _ in counts), ref_units=sum(n for _, n in counts), num_utts=len(refs))


def oracle_wer(refs: Sequence[str], candidates: Sequence[Sequence[str]], *,
               normalize: bool = True) -> tuple[ErrorRate, list[int]]:
    """WER of the best candidate per utterance (the n-best oracle).

    Args:
        refs: one reference per utterance.
        candidates: per utterance, its hypotheses (at least one each).

    Returns:
        The oracle error rate and, per utterance, the index of the chosen candidate (the first
        one among ties).
    """
    _check_pairs(refs, candidates)  # type: ignore[arg-type]
    errors = units = 0
    chosen: list[int] = []
    for i, (ref, cands) in enumerate(zip(refs, candidates, strict=True)):
        if len(cands) == 0:
            raise InputError(f"utterance #{i}", "has no hypotheses; the oracle needs at least one")
        scored = [word_errors(ref, c, normalize=normalize) for c in cands]
        best = min(range(len(cands)), key=lambda j: scored[j][0])
        chosen.append(best)
        errors += scored[best][0]
        units += scored[best][1]
    return ErrorRate(errors=errors, ref_units=units, num_utts=len(refs)), chosen
