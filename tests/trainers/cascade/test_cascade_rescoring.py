"""Rescoring math on hand-made n-best lists, lambda grid search and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.models.nbest import Hypothesis, NBestList
from speechtok.trainers.cascade.rescoring import (
    LambdaSearch,
    LMScore,
    RescoreConfig,
    grid_search,
    plot_wer_vs_lambda,
    rescore,
    score_matrix,
    select,
)


def _nb(uid: str, ref: str, hyps: list[tuple[str, float, int]]) -> NBestList:
    return NBestList(
        id=uid,
        source="test",
        reference=ref,
        hyps=tuple(
            Hypothesis(text=t, rank=r, am_score=s, am_score_norm=s / n, num_tokens=n)
            for r, (t, s, n) in enumerate(hyps)
        ),
    )


# AM prefers hypothesis 0, the LM prefers hypothesis 2.
NB = _nb("u1", "the cat sat", [("the hat sat", -1.0, 3), ("a cat sat", -2.0, 3), ("the cat sat", -3.0, 3)])
LM = [LMScore(logprob=-9.0, num_tokens=4), LMScore(logprob=-8.0, num_tokens=4), LMScore(logprob=-4.0, num_tokens=4)]


def test_lambda_zero_is_am_argmax_and_one_is_lm_argmax() -> None:
    cfg = RescoreConfig()
    assert rescore([NB], [LM], 0.0, cfg) == ["the hat sat"]
    assert rescore([NB], [LM], 1.0, cfg) == ["the cat sat"]


def test_interpolation_switches_where_scores_cross() -> None:
    # combined(0) = -1 -8 lam, combined(2) = -3 - lam: equal at lam = 2/7.
    am, lm = score_matrix(NB, LM, RescoreConfig())
    assert select(am, lm, 0.28) == 0
    assert select(am, lm, 0.29) == 2


def test_ties_go_to_the_better_decoder_rank() -> None:
    nb = _nb("u", "x", [("a", -1.0, 1), ("b", -1.0, 1)])
    lm = [LMScore(logprob=-1.0, num_tokens=1)] * 2
    assert rescore([nb], [lm], 0.5, RescoreConfig()) == ["a"]


def test_length_normalisation_changes_the_choice() -> None:
    # Long hypothesis: worse total, better per token.
    nb = _nb("u", "a b c d", [("a b", -2.0, 2), ("a b c d", -3.0, 4)])
    lm = [LMScore(logprob=-1.0, num_tokens=3), LMScore(logprob=-1.0, num_tokens=5)]
    assert rescore([nb], [lm], 0.0, RescoreConfig(am_norm="sum")) == ["a b"]
    assert rescore([nb], [lm], 0.0, RescoreConfig(am_norm="token")) == ["a b c d"]
    assert rescore([nb], [lm], 0.0, RescoreConfig(am_norm="word")) == ["a b c d"]
    assert rescore([nb], [lm], 1.0, RescoreConfig(lm_norm="token")) == ["a b c d"]


def test_grid_search_finds_the_lambda_that_fixes_errors() -> None:
    cfg = RescoreConfig(lambdas=(0.0, 0.25, 0.5, 0.75, 1.0))
    # Utterance 2: the LM is wrong, so a middle lambda is best overall.
    nb2 = _nb("u2", "dog", [("dog", -1.0, 1), ("dug", -6.0, 1)])
    lm2 = [LMScore(logprob=-5.0, num_tokens=2), LMScore(logprob=-4.0, num_tokens=2)]
    s = grid_search([NB, nb2], [LM, lm2], cfg)
    assert isinstance(s, LambdaSearch)
    assert s.wers[0] == pytest.approx(1 / 4)  # AM only: one error in utterance 1
    assert s.best_wer == 0.0
    assert 0.0 < s.best_lambda < 1.0
    assert s.best_wer == min(s.wers)
    assert s.best_lambda == min(lam for lam, w in zip(s.lambdas, s.wers, strict=True) if w == s.best_wer)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ConfigError, match="am_norm"):
        RescoreConfig(am_norm="mean").validate()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        RescoreConfig(lambdas=(0.0, 1.5)).validate()
    with pytest.raises(ConfigError, match="sorted"):
        grid_search([NB], [LM], RescoreConfig(lambdas=(1.0, 0.0)))
    with pytest.raises(InputError, match="3 hypotheses but 2 LM scores"):
        score_matrix(NB, LM[:2], RescoreConfig())
    with pytest.raises(ConfigError, match="lambda"):
        select(np.zeros(2), np.zeros(2), -0.1)
    no_ref = NBestList(id="x", source="t", hyps=NB.hyps)
    with pytest.raises(InputError, match="no reference"):
        grid_search([no_ref], [LM], RescoreConfig())


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = plot_wer_vs_lambda(
        tmp_path / "p.png", {"dev": ((0.0, 0.5, 1.0), (0.3, 0.2, 0.4))}, chosen=0.5
    )
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
