"""PocketSphinx n-best lists: the en-us acoustic model, 3-gram LM and CMUdict of the wheel.

`Decoder.nbest()` walks the lattice A* and yields many paths that differ only in fillers
(``<sil>``, ``[NOISE]``, ``++UH++``), sentence markers (``<s>``, ``</s>``) or pronunciation
variants (``word(2)``). `clean_sphinx_text` removes those, and `merge_filler_variants` keeps
the first (best-scored) path of each cleaned text, so the list holds distinct word sequences.

Scores: PocketSphinx's Python `Hypothesis.score` is the path score mapped out of its integer
log domain (a number in (0, 1]); we store its natural log as `am_score` (an integer score, as
older bindings return, is converted with `LogMath.log_to_ln`). `num_tokens` is the word count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechtok.errors import ConfigError
from speechtok.models.nbest import Hypothesis, NBestList, Utterance, load_audio_or_leave_out

_FILLER = re.compile(r"^(<s>|</s>|<sil>|<unk>|\[[^\]]*\]|\+\+[^+]*\+\+)$", re.IGNORECASE)
_VARIANT = re.compile(r"\(\d+\)$")


def clean_sphinx_text(text: str) -> str:
    """Drops fillers and sentence markers, strips ``(2)`` pronunciation variants."""
    return " ".join(_VARIANT.sub("", w) for w in text.split() if not _FILLER.match(w))


def merge_filler_variants(paths: Iterable[tuple[str, float]], num_hypotheses: int) -> list[tuple[str, float]]:
    """Keeps the first path of each distinct cleaned text, up to `num_hypotheses`.

    Args:
        paths: (raw text, natural-log score) in the decoder's order (best first).
    """
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for raw, score in paths:
        text = clean_sphinx_text(raw)
        if text in seen:
            continue
        seen.add(text)
        out.append((text, score))
        if len(out) == num_hypotheses:
            break
    return out


@dataclass(frozen=True, kw_only=True)
class SphinxNBestConfig:
    """PocketSphinx decoding; `None` paths use the models bundled with the wheel."""

    num_hypotheses: int = 5
    max_paths: int = 100  # lattice paths to walk to find `num_hypotheses` distinct texts
    hmm: Path | None = None
    lm: Path | None = None
    dict: Path | None = None

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if self.num_hypotheses < 1:
            raise ConfigError("num_hypotheses", self.num_hypotheses, "must be >= 1")
        if self.max_paths < self.num_hypotheses:
            raise ConfigError("max_paths", self.max_paths, f"must be >= num_hypotheses={self.num_hypotheses}")
        for name in ("hmm", "lm", "dict"):
            p = getattr(self, name)
            if p is not None and not Path(p).exists():
                raise ConfigError(name, str(p), "must exist (or be null for the bundled model)")


class SphinxNBest:
    """N-best decoding with PocketSphinx (one utterance at a time; it has no batch mode)."""

    def __init__(self, config: SphinxNBestConfig | None = None) -> None:
        # lazy: pocketsphinx only for this decoder
        from pocketsphinx import Decoder

        self.config = config or SphinxNBestConfig()
        self.config.validate()
        kwargs = {name: str(p) for name in ("hmm", "lm", "dict") if (p := getattr(self.config, name)) is not None}
        self.decoder = Decoder(loglevel="ERROR", **kwargs)
        self.sample_rate = int(self.decoder.config["samprate"])

    def _to_ln(self, score: float) -> float:
        if isinstance(score, float) and 0.0 < score <= 1.0:
            return math.log(score)
        if isinstance(score, float) and score == 0.0:
            return -1e30
        return float(self.decoder.logmath.log_to_ln(int(score)))

    def decode(self, wave: np.ndarray) -> list[Hypothesis]:
        """N-best of one mono wave `(S,)` float32 in [-1, 1] at the decoder's sample rate."""
        pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        paths: list[tuple[str, float]] = []
        for i, h in enumerate(d.nbest() or ()):  # None when no frame was decoded
            if i >= self.config.max_paths:
                break
            if h is not None and h.hypstr is not None:  # the iterator yields None for dead paths
                paths.append((h.hypstr, self._to_ln(h.score)))
        best = d.hyp()
        if not paths and best is not None and best.hypstr is not None:
            paths.append((best.hypstr, self._to_ln(best.score)))
        # no path at all (silence, noise): an empty n-best list, which rescoring reads as ""
        merged = merge_filler_variants(paths, self.config.num_hypotheses)
        return [Hypothesis(text=t, rank=r, am_score=s, am_score_norm=s / max(len(t.split()), 1),
                           num_tokens=len(t.split())) for r, (t, s) in enumerate(merged)]

    def decode_utterances(self, utts: Sequence[Utterance] | Iterable[Utterance], *,
                          left_out: dict[str, str] | None = None) -> Iterator[NBestList]:
        """One `NBestList` (source ``"sphinx"``) per utterance, in order; `left_out` as in
        `speechtok.models.whisper_nbest.WhisperNBest.decode_utterances`."""
        for u in utts:
            wave = load_audio_or_leave_out(u, self.sample_rate, left_out)
            if wave is None:
                continue
            yield NBestList(id=u.id, source="sphinx", hyps=tuple(self.decode(wave)), reference=u.text,
                            speaker=u.speaker, duration=round(len(wave) / self.sample_rate, 4))
