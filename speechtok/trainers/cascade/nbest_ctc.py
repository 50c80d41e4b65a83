"""N-best lists from a CTC model by prefix beam search (the latent family's CTC encoder).

`ctc_prefix_beam_search(log_probs)` is the standard CTC prefix beam search (Hannun et al.,
2014, without a language model): each prefix keeps the log-probability of its paths ending in
blank and in non-blank, so repeated labels separated by a blank stay distinct and the score of
a prefix is the sum over *all* its alignments, not the best one. With a beam as wide as the
number of prefixes it is exact (tested against brute-force enumeration).

`CTCNBest` runs it over a latent run's stage-1 encoder + CTC head (`RUN/stage1`, via
`speechtok.models.ctc_align.CTCAligner`) on features read from shards (the group the run
was trained on, e.g. ``feats.whisper``), matched to utterances by id. Hypotheses keep their
CTC log-probability as ``am_score`` and their rank; utterances without features in the shards
get an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from speechtok.errors import ConfigError
from speechtok.models.ctc_align import CTCAligner
from speechtok.models.nbest import Hypothesis, NBestList, Utterance
from speechtok.shards.reader import ShardDataset

_NEG = -math.inf


def _lse(a: float, b: float) -> float:
    if a == _NEG:
        return b
    if b == _NEG:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def ctc_prefix_beam_search(log_probs: np.ndarray, *, beam_size: int = 8, num_hypotheses: int = 5, blank: int = 0,
                           token_beam: int | None = None) -> list[tuple[tuple[int, ...], float]]:
    """The `num_hypotheses` most likely label sequences of `(T, V)` CTC log-posteriors.

    Args:
        beam_size: prefixes kept after each frame.
        token_beam: labels considered per frame (the most likely ones; None = all `V`).
    Returns:
        ``[(labels, log_prob)]``, best first; labels exclude `blank`; log_prob is the natural
        log of the total probability of all alignments of the prefix.
    """
    if beam_size < 1 or num_hypotheses < 1:
        raise ConfigError("beam_size/num_hypotheses", (beam_size, num_hypotheses), "must be >= 1")
    lp = np.asarray(log_probs, np.float64)
    if lp.ndim != 2:
        raise ConfigError("log_probs", lp.shape, "must be (T, V)")
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG)}  # prefix -> (p_blank, p_nonblank)
    k = lp.shape[1] if token_beam is None else min(token_beam, lp.shape[1])
    for t in range(lp.shape[0]):
        row = lp[t]
        cands = np.argpartition(-row, k - 1)[:k] if k < lp.shape[1] else np.arange(lp.shape[1])
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            s = nxt.setdefault(prefix, [_NEG, _NEG])
            s[0] = _lse(s[0], total + row[blank])
            for c in cands:
                c = int(c)
                if c == blank:
                    continue
                ext = nxt.setdefault(prefix + (c,), [_NEG, _NEG])
                if prefix and prefix[-1] == c:
                    ext[1] = _lse(ext[1], pb + row[c])  # a repeat needs a blank in between
                    s[1] = _lse(s[1], pnb + row[c])  # or collapses into the same prefix
                else:
                    ext[1] = _lse(ext[1], total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: _lse(*kv[1]), reverse=True)[:beam_size]
        beams = {p: (v[0], v[1]) for p, v in ranked}
    out = sorted(((p, _lse(*v)) for p, v in beams.items()), key=lambda x: x[1], reverse=True)
    return out[:num_hypotheses]


class CTCNBest:
    """N-best lists of a latent run's CTC head over features from shards (see module docstring).

    Args:
        run_dir: a ``speechtok train latent`` run with a stage-1 checkpoint.
        shards: the shard output holding the run's features group for the utterances' ids.
    """

    def __init__(self, run_dir: str | Path, shards: str | Path, *, beam_size: int = 8,
                 num_hypotheses: int = 5, device: str = "cpu") -> None:
        if not 1 <= num_hypotheses <= beam_size:
            raise ConfigError("num_hypotheses", num_hypotheses, f"must be in [1, beam_size={beam_size}]")
        self.model = CTCAligner(run_dir, device=device)
        self.beam_size, self.num_hypotheses = beam_size, num_hypotheses
        group = self.model.feats_group
        self.ds = ShardDataset(shards, groups=("cuts", group), columns=[group])
        ids = ShardDataset(shards, groups=("cuts", group), columns=["id"])  # the same rows as self.ds
        self.rows = {str(r["id"]): i for i, r in enumerate(ids)}
        self.group = group

    def decode_feats(self, feats: np.ndarray) -> list[Hypothesis]:
        """N-best of one cut's `(T, D)` features."""
        lp = self.model.log_probs(feats).numpy()
        best = ctc_prefix_beam_search(lp, beam_size=self.beam_size, num_hypotheses=self.num_hypotheses,
                                      token_beam=min(lp.shape[1], 2 * self.beam_size))
        hyps: list[Hypothesis] = []
        seen: set[str] = set()
        for labels, score in best:
            text = " ".join(self.model.labels_to_text(labels).split())
            if text in seen:  # different label sequences can decode to the same text
                continue
            seen.add(text)
            n = max(len(text.split()), 1)
            hyps.append(Hypothesis(text=text, rank=len(hyps), am_score=float(score),
                                   am_score_norm=float(score) / n, num_tokens=len(labels)))
        return hyps

    def decode_utterances(self, utts: Iterable[Utterance] | Sequence[Utterance]) -> Iterator[NBestList]:
        """One `NBestList` (source ``"ctc"``) per utterance, in order."""
        for u in utts:
            i = self.rows.get(u.id)
            feats = None if i is None else self.ds[i][self.group]
            hyps = self.decode_feats(np.asarray(feats)) if feats is not None and len(feats) else []
            yield NBestList(id=u.id, source="ctc", hyps=tuple(hyps), reference=u.text, speaker=u.speaker,
                            duration=None)
