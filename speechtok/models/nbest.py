"""N-best decoding's inputs and outputs: an utterance and its audio (`Utterance`, `load_audio`), the
hypotheses and lists every n-best decoder returns and the cascade passes around, and their JSONL cache.

One JSON object per line and utterance::

    {"id": "000010011", "source": "whisper", "reference": "WE CALL IT BEAR",
     "speaker": "0001", "duration": 2.58,
     "hyps": [{"text": " We call it Bill.", "rank": 0, "am_score": -2.12,
               "am_score_norm": -0.42, "num_tokens": 5}, ...]}

`am_score` is the natural-log acoustic-model score of the whole hypothesis (Whisper: the sum of
token log-probabilities; PocketSphinx: the path score converted to natural log), `am_score_norm`
the same divided by `num_tokens` (the decoder's own length normalisation), `rank` the decoder's
order (0 = its 1-best).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.atomic import atomic_open
from speechtok.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Utterance:
    """One utterance to decode (the cascade reads them from a Kaldi directory,
    `speechtok.trainers.cascade.data.read_kaldi_dir`)."""

    id: str
    path: Path
    text: str | None
    speaker: str


def load_audio(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Reads a mono file as float32 `(S,)` at `sample_rate` (resampled with lhotse if needed)."""
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(str(path), f"cannot be read by soundfile: {exc}") from exc
    bad = int((~np.isfinite(wave)).sum())
    if bad:  # a float file's corrupt body: NaN/inf samples would reach the decoder as garbage
        raise InputError(str(path), f"has {bad} non-finite samples (NaN or inf) of {wave.size}: a corrupt body")
    mono = wave.mean(axis=1).astype(np.float32)
    if sr != sample_rate:
        # lazy: lhotse (and torch with it) takes seconds to import
        from lhotse.augmentation import Resample

        mono = Resample(source_sampling_rate=sr, target_sampling_rate=sample_rate)(mono[None])[0]
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_audio_or_leave_out(utt: Utterance, sample_rate: int, left_out: dict[str, str] | None) -> np.ndarray | None:
    """`load_audio` of `utt`, or None when its audio cannot be decoded (a header that opens over a
    corrupt body: truncated FLAC frames, garbage after the header, NaN samples): the reason is
    recorded as ``left_out[utt.id]`` and logged. With `left_out` None the `InputError` is raised."""
    try:
        return load_audio(utt.path, sample_rate)
    except InputError as exc:
        if left_out is None:
            raise
        left_out[utt.id] = str(exc)
        log.warning("%s left out: %s", utt.id, exc)
        return None


@dataclass(frozen=True, kw_only=True)
class Hypothesis:
    """One ASR hypothesis with its acoustic-model score and decoder rank."""

    text: str
    rank: int
    am_score: float
    am_score_norm: float
    num_tokens: int


@dataclass(frozen=True, kw_only=True)
class NBestList:
    """The hypotheses of one utterance, best first, with its reference when known."""

    id: str
    source: str
    hyps: tuple[Hypothesis, ...]
    reference: str | None = None
    speaker: str | None = None
    duration: float | None = None
    extra: dict[str, float | str] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """The hypothesis texts in rank order."""
        return [h.text for h in self.hyps]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (see the module docstring)."""
        out = asdict(self)
        out["hyps"] = [asdict(h) for h in self.hyps]
        if not self.extra:
            out.pop("extra")
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> NBestList:
        """Inverse of `to_json`."""
        try:
            hyps = tuple(Hypothesis(**h) for h in obj["hyps"])  # type: ignore[attr-defined]
            return cls(id=str(obj["id"]), source=str(obj["source"]), hyps=hyps,
                       reference=obj.get("reference"), speaker=obj.get("speaker"),  # type: ignore[arg-type]
                       duration=obj.get("duration"),  # type: ignore[arg-type]
                       extra=dict(obj.get("extra") or {}))  # type: ignore[call-overload]
        except (KeyError, TypeError) as exc:
            raise InputError(str(obj.get("id", "?")), f"is not an n-best record: {exc}") from exc


def write_jsonl(path: Path, lists: Iterable[NBestList], *, append: bool = False) -> int:
    """Writes (or appends) n-best lists as JSONL; returns the number written.

    A new file is written atomically (`speechtok.atomic.atomic_open`), so a crash never leaves half
    a file; appending flushes and fsyncs after every record, so a crash loses at most the last line.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "a", encoding="utf-8") if append else atomic_open(path, "w") as f:
        for nb in lists:
            f.write(json.dumps(nb.to_json(), ensure_ascii=False) + "\n")
            if append:
                f.flush()
                os.fsync(f.fileno())
            n += 1
    return n


def read_jsonl(path: Path) -> Iterator[NBestList]:
    """Reads n-best lists lazily; a torn last line (crash while appending) is skipped."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                return
            raise InputError(f"{path}:{i + 1}", f"is not valid JSON ({exc}); delete the line") from exc
        yield NBestList.from_json(obj)
