"""CTC prefix beam search (exact against brute force) and CTC n-best lists from a latent run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from speechtok.errors import ConfigError
from speechtok.trainers.cascade.nbest_ctc import ctc_prefix_beam_search


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out = []
    for k, c in enumerate(path):
        if c != blank and (k == 0 or c != path[k - 1]):
            out.append(c)
    return tuple(out)


def _brute_force(lp: np.ndarray) -> dict[tuple[int, ...], float]:
    """log P(labels) summed over every alignment (V**T paths)."""
    probs: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        p = math.exp(sum(lp[t, c] for t, c in enumerate(path)))
        key = _collapse(path)
        probs[key] = probs.get(key, 0.0) + p
    return {k: math.log(v) for k, v in probs.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_beam_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lp = np.log(rng.dirichlet(np.ones(3), size=5))  # T=5, V=3 (blank + 2 labels)
    exact = _brute_force(lp)
    got = ctc_prefix_beam_search(lp, beam_size=1000, num_hypotheses=6)
    want = sorted(exact.items(), key=lambda kv: kv[1], reverse=True)[:6]
    assert [p for p, _ in got] == [p for p, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert a == pytest.approx(b, abs=1e-9)


def test_beam_beats_greedy_on_the_classic_case() -> None:
    # greedy picks blank at both frames (""), but "a" has more total probability
    p = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]])  # blank, a, b
    best = ctc_prefix_beam_search(np.log(p), beam_size=4, num_hypotheses=3)
    assert best[0][0] == (1,)
    assert best[0][1] == pytest.approx(math.log(0.35 * 0.35 + 2 * 0.4 * 0.35), abs=1e-12)
    assert {lab for lab, _ in best} >= {(), (1,)}


def test_repeats_need_a_blank() -> None:
    p = np.full((3, 2), 1e-6)
    p[:, 1] = 1.0  # "a a a" -> "a"
    p[1] = [1.0, 1e-6]  # "a _ a" -> "a a"
    best = ctc_prefix_beam_search(np.log(p / p.sum(1, keepdims=True)), beam_size=4, num_hypotheses=1)
    assert best[0][0] == (1, 1)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        ctc_prefix_beam_search(np.zeros((2, 2)), beam_size=0)
    with pytest.raises(ConfigError):
        ctc_prefix_beam_search(np.zeros(3))
