"""N-best rescoring: Y* = argmax_Y (1 - lambda) log p_AM(Y|X) + lambda log p_LM(Y).

The acoustic score comes from the n-best list (`Hypothesis.am_score`, natural log), the LM
score from `speechtok.trainers.cascade.lm_scoring` (natural log of the normalised text, with
the end-of-sentence token). Either can be length-normalised:

- ``"sum"``: the total log-probability (no normalisation);
- ``"token"``: divided by the model's own token count (AM: decoder tokens, LM: LM tokens);
- ``"word"``: divided by the number of words of the normalised hypothesis (at least 1).

lambda = 0 returns the acoustic argmax, lambda = 1 the LM argmax; ties go to the hypothesis the
decoder ranked higher. `grid_search` tunes lambda on a dev split (lowest WER, the smallest
lambda among ties) and `plot_wer_vs_lambda` draws the WER curve of dev (and test) against it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechtok import atomic
from speechtok.errors import ConfigError, InputError
from speechtok.models.nbest import NBestList
from speechtok.trainers.metrics import ErrorRate, normalize_text, wer

NORMS = ("sum", "token", "word")


def chosen_system(dev: Mapping[str, float], where: str = "results.json") -> str:
    """The system a finished cascade run decodes with: LM rescoring (``rescored_lm``) or GER
    (``ger``), whichever has the lower WER in `dev` (its ``results.json["results"]["dev"]``)."""
    systems = [s for s in ("rescored_lm", "ger") if s in dev]
    if not systems:
        raise InputError(where, "has neither rescored_lm nor ger dev results")
    return min(systems, key=lambda s: dev[s])


@dataclass(frozen=True, kw_only=True)
class LMScore:
    """Natural-log probability of one text under a language model, and its token count."""

    logprob: float
    num_tokens: int


@dataclass(frozen=True, kw_only=True)
class RescoreConfig:
    """How AM and LM scores are normalised, and which lambdas the grid search tries."""

    am_norm: str = "sum"
    lm_norm: str = "sum"
    lambdas: tuple[float, ...] = tuple(round(x, 4) for x in np.linspace(0.0, 1.0, 21))

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        for name in ("am_norm", "lm_norm"):
            if getattr(self, name) not in NORMS:
                raise ConfigError(name, getattr(self, name), f"must be one of {NORMS}")
        if not self.lambdas:
            raise ConfigError("lambdas", self.lambdas, "must hold at least one value")
        bad = [x for x in self.lambdas if not 0.0 <= x <= 1.0]
        if bad:
            raise ConfigError("lambdas", bad, "must all lie in [0, 1]")


def _words(text: str) -> int:
    return max(len(normalize_text(text).split()), 1)


def _normalised(total: float, num_tokens: int, text: str, norm: str) -> float:
    """`total` as it is ("sum"), per token ("token") or per word of `text` ("word")."""
    return total if norm == "sum" else total / (max(num_tokens, 1) if norm == "token" else _words(text))


def score_matrix(nbest: NBestList, lm_scores: Sequence[LMScore],
                 config: RescoreConfig) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (AM, LM) scores of one n-best list, each `(n,)` float64."""
    if len(lm_scores) != len(nbest.hyps):
        raise InputError(nbest.id, f"has {len(nbest.hyps)} hypotheses but {len(lm_scores)} LM scores")
    pairs = list(zip(nbest.hyps, lm_scores, strict=True))
    am = np.array([_normalised(h.am_score, h.num_tokens, h.text, config.am_norm) for h, _ in pairs], np.float64)
    lm = np.array([_normalised(s.logprob, s.num_tokens, h.text, config.lm_norm) for h, s in pairs], np.float64)
    return am, lm


def select(am: np.ndarray, lm: np.ndarray, lam: float) -> int:
    """Index of argmax (1 - lam) * am + lam * lm over `(n,)` arrays; the lowest index wins ties."""
    if not 0.0 <= lam <= 1.0:
        raise ConfigError("lambda", lam, "must lie in [0, 1]")
    if am.shape != lm.shape or am.ndim != 1 or len(am) == 0:
        raise InputError("scores", f"need two equal non-empty (n,) arrays, got {am.shape} and {lm.shape}")
    combined = (1.0 - lam) * am + lam * lm
    return int(np.argmax(combined))  # first maximum = best decoder rank among ties


def rescore(nbests: Sequence[NBestList], lm_scores: Sequence[Sequence[LMScore]], lam: float,
            config: RescoreConfig) -> list[str]:
    """The chosen hypothesis text per utterance for one lambda."""
    config.validate()
    return [nb.hyps[select(*score_matrix(nb, scores, config), lam)].text
            for nb, scores in zip(nbests, lm_scores, strict=True)]


@dataclass(frozen=True, kw_only=True)
class LambdaSearch:
    """WER at every lambda of the grid, and the chosen lambda (lowest WER, smallest among ties)."""

    lambdas: tuple[float, ...]
    wers: tuple[float, ...]
    best_lambda: float
    best_wer: float


def wer_curve(nbests: Sequence[NBestList], lm_scores: Sequence[Sequence[LMScore]],
              config: RescoreConfig) -> list[ErrorRate]:
    """WER of the rescored n-best at every lambda of `config.lambdas` (needs references)."""
    config.validate()
    missing = next((nb for nb in nbests if nb.reference is None), None)
    if missing is not None:
        raise InputError(missing.id, "has no reference; WER needs one per utterance")
    refs = [str(nb.reference) for nb in nbests]
    mats = [score_matrix(nb, s, config) for nb, s in zip(nbests, lm_scores, strict=True)]
    return [wer(refs, [nb.hyps[select(am, lm, lam)].text for nb, (am, lm) in zip(nbests, mats, strict=True)])
            for lam in config.lambdas]


def grid_search(nbests: Sequence[NBestList], lm_scores: Sequence[Sequence[LMScore]],
                config: RescoreConfig) -> LambdaSearch:
    """Tunes lambda on `nbests` (a dev split) by grid search over `config.lambdas`."""
    if list(config.lambdas) != sorted(config.lambdas):
        raise ConfigError("lambdas", config.lambdas, "must be sorted ascending")
    curve = [e.rate for e in wer_curve(nbests, lm_scores, config)]
    best = int(np.argmin(curve))  # first minimum = smallest lambda among ties (grid is sorted)
    return LambdaSearch(lambdas=tuple(config.lambdas), wers=tuple(curve), best_lambda=float(config.lambdas[best]),
                        best_wer=float(curve[best]))


def plot_wer_vs_lambda(path: Path, curves: dict[str, tuple[Sequence[float], Sequence[float]]], *,
                       chosen: float | None = None, title: str = "n-best rescoring: WER vs LM weight") -> Path:
    """Writes a PNG of WER (%) against lambda, one line per named curve.

    Args:
        path: output ``.png``.
        curves: label -> (lambdas, WER rates in [0, 1]).
        chosen: the tuned lambda, drawn as a vertical line.
    """
    # lazy: matplotlib only for the plot
    import matplotlib

    matplotlib.use("Agg")
    # lazy: as above, once the backend is chosen
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for label, (xs, ys) in curves.items():
        ax.plot(list(xs), [100.0 * y for y in ys], marker="o", markersize=3, label=label)
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle="--", linewidth=1, label=f"tuned lambda = {chosen:g}")
    ax.set_xlabel("lambda (LM weight)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
    return path
