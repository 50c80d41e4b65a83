"""WER / CER and the shared text normaliser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speechtok.errors import InputError
from speechtok.trainers.metrics import cer, normalize_text, oracle_wer, wer, word_errors


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("  We call it Bill.  ", "we call it bill"),
        ("Don't say 'twenty-one'!", "don't say twenty one"),
        ("It\u2019s 1,000 or 3.5 items", "it's 1000 or 3.5 items"),
        ("3, 2, 2, 7", "3 2 2 7"),
        ("ZERO THREE FIVE ONE", "zero three five one"),
        ("snake_case -- dashes", "snake case dashes"),
        ("", ""),
        ("...", ""),
        ("Caf\u00e9 \u00c9COLE", "caf\u00e9 \u00e9cole"),
        ("a\x00b\tc", "a b c"),  # regression: NUL used to come out as "."
    ],
)
def test_normalize_text(raw: str, norm: str) -> None:
    assert normalize_text(raw) == norm


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_wer_counts_edits_over_reference_words() -> None:
    e = wer(["a b c", "d e"], ["a x c", "d e f"])
    assert (e.errors, e.ref_units, e.num_utts) == (2, 5, 2)
    assert e.rate == pytest.approx(0.4)


def test_wer_applies_normalisation() -> None:
    assert wer(["WE CALL IT BEAR"], ["We call it, bear."]).rate == 0.0
    assert wer(["WE CALL IT BEAR"], ["We call it, bear."], normalize=False).rate > 0


def test_empty_reference_counts_insertions() -> None:
    e = wer(["", "a b"], ["x y", "a b"])
    assert (e.errors, e.ref_units) == (2, 2)
    assert word_errors("", "") == (0, 0)


def test_all_empty_references() -> None:
    assert wer([""], [""]).rate == 0.0
    assert math.isinf(wer([""], ["x"]).rate)


def test_length_mismatch_and_str_input_raise() -> None:
    with pytest.raises(InputError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(InputError, match="not a str"):
        wer("a b", "a b")  # type: ignore[arg-type]


def test_cer_counts_characters_with_spaces() -> None:
    e = cer(["ab cd"], ["ab cx"])
    assert (e.errors, e.ref_units) == (1, 5)


def test_oracle_picks_best_candidate_and_is_not_worse_than_first() -> None:
    refs = ["the cat sat", "a b"]
    cands = [["the hat sat", "the cat sat"], ["a c", "x y"]]
    o, chosen = oracle_wer(refs, cands)
    assert chosen == [1, 0]
    assert o.errors == 1
    assert o.rate <= wer(refs, [c[0] for c in cands]).rate
    with pytest.raises(InputError, match="no hypotheses"):
        oracle_wer(["a"], [[]])


def test_error_rates_add() -> None:
    a, b = wer(["a b"], ["a"]), wer(["c"], ["d"])
    s = a + b
    assert (s.errors, s.ref_units, s.num_utts) == (2, 3, 2)
