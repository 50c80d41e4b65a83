"""Audio loading shared by the stages that read waveforms (``fbank``, ``ssl``, ``whisper``,
``codec``): decoding a cut to float32 mono at a rate, and the per-cut checks that quarantine
unusable audio (``unreadable``, ``empty``, ``nan_or_inf``) so that one bad cut never stops a shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from speechtok.pipeline.stage import CutItem, Quarantine

_PLAIN_SUFFIXES = (".flac", ".wav")


def _whole_file(cut: Any, sampling_rate: int) -> str | None:
    """The file path when `cut` is one whole mono FLAC/WAV file at `sampling_rate` with nothing
    to cut, mix, resample or transform (then libsndfile alone gives lhotse's samples); else None."""
    rec = getattr(cut, "recording", None)
    if type(cut).__name__ != "MonoCut" or rec is None or rec.transforms:
        return None
    if len(rec.sources) != 1 or rec.sources[0].type != "file" or rec.num_channels != 1:
        return None
    path = str(rec.sources[0].source)
    if not path.lower().endswith(_PLAIN_SUFFIXES) or int(rec.sampling_rate) != sampling_rate:
        return None
    if cut.start != 0 or cut.duration != rec.duration or getattr(cut, "custom", None):
        return None
    return path


def load_mono(cut: Any, sampling_rate: int) -> np.ndarray:
    """Decodes `cut` as float32 (S,) at `sampling_rate` (first channel of multi-channel cuts).

    A cut that is a whole mono FLAC/WAV file at the rate is read by soundfile directly (the
    same samples as `cut.load_audio()`, without lhotse's per-call backend overhead); when its
    sample count differs from the manifest's, lhotse's path decides (tolerance, padding).
    """
    path = _whole_file(cut, sampling_rate)
    if path is not None:
        import soundfile as sf

        wave, _ = sf.read(path, dtype="float32", always_2d=False)
        if wave.ndim == 1 and wave.shape[0] == cut.recording.num_samples:
            return np.asarray(wave)  # (S,)
    if int(cut.sampling_rate) != sampling_rate:
        cut = cut.resample(sampling_rate)
    audio = np.asarray(cut.load_audio(), dtype=np.float32)  # (C, S)
    return audio[0] if audio.ndim == 2 else audio.reshape(-1)


Result = dict[str, Any] | Quarantine


def error_detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def load_waves(batch: Sequence[CutItem], sampling_rate: int
               ) -> tuple[list[Result], list[int], list[np.ndarray]]:
    """Decodes the cuts of `batch` as float32 mono at `sampling_rate` (resampled when needed).

    Returns:
        ``(out, slots, waves)``: `out` has one entry per cut, a `Quarantine` for cuts that
        cannot be used (``unreadable``, ``empty``, ``nan_or_inf``) and ``{"id": ...}`` for the
        others; `slots[j]` is the position in `out` of `waves[j]`, a float32 (S_j,) array.
    """
    out: list[Result] = []
    slots: list[int] = []
    waves: list[np.ndarray] = []
    for item in batch:
        try:
            wave = load_mono(item.cut, sampling_rate)
        except Exception as exc:  # any decoder error: the cut is unusable, the run goes on
            out.append(Quarantine(id=item.id, reason="unreadable", detail=error_detail(exc)))
            continue
        if wave.size == 0:
            out.append(Quarantine(id=item.id, reason="empty", detail="0 samples"))
            continue
        if not np.isfinite(wave).all():
            bad = int((~np.isfinite(wave)).sum())
            out.append(Quarantine(id=item.id, reason="nan_or_inf", detail=f"{bad} non-finite samples"))
            continue
        slots.append(len(out))
        out.append({"id": item.id})
        waves.append(wave)
    return out, slots, waves
