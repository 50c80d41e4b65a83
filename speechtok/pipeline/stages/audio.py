"""Audio loading shared by the stages that read waveforms (``fbank``, ``ssl``, ``whisper``,
``codec``): decoding a cut to float32 mono at a rate, and the per-cut checks that quarantine
unusable audio (``unreadable``, ``empty``, ``nan_or_inf``) so that one bad cut never stops a shard.

Failures are classified by `speechtok.failures`: a decoder error on bytes that can be read is
bad input (quarantined ``unreadable``); a file that is gone since ingest, or whose bytes cannot
be read (``OSError``, e.g. EIO on a network file system), is an environment error: retried with
backoff, then the shard fails with an `EnvironmentFailure` naming the cut (nothing committed;
a rerun repairs it). Any other exception is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import soundfile as sf

from speechtok.failures import (
    ENVIRONMENT,
    BadInputError,
    classify,
    describe,
    probe_readable,
    with_retries,
)
from speechtok.faults import maybe_io_error
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


def source_files(cut: Any) -> list[str]:
    """Paths of the local files `cut`'s audio is read from (none for other source types)."""
    rec = getattr(cut, "recording", None)
    return [str(s.source) for s in getattr(rec, "sources", None) or []
            if getattr(s, "type", None) == "file"]


def _decode(cut: Any, sampling_rate: int) -> np.ndarray:
    """Float32 (S,) samples of `cut` at `sampling_rate`. A cut that is a whole mono FLAC/WAV
    file at the rate is read by soundfile directly (the same samples as `cut.load_audio()`,
    without lhotse's per-call backend overhead); when its sample count differs from the
    manifest's, lhotse's path decides (tolerance, padding)."""
    maybe_io_error(str(cut.id))  # crash tests: SPEECHTOK_FAULT_EIO
    path = _whole_file(cut, sampling_rate)
    if path is not None:
        wave, _ = sf.read(path, dtype="float32", always_2d=False)
        if wave.ndim == 1 and wave.shape[0] == cut.recording.num_samples:
            return np.asarray(wave)  # (S,)
    if int(cut.sampling_rate) != sampling_rate:
        cut = cut.resample(sampling_rate)
    audio = np.asarray(cut.load_audio(), dtype=np.float32)  # (C, S)
    return audio[0] if audio.ndim == 2 else audio.reshape(-1)


def load_mono(cut: Any, sampling_rate: int) -> np.ndarray:
    """Decodes `cut` as float32 (S,) at `sampling_rate` (first channel of multi-channel cuts).

    Raises:
        BadInputError: the bytes cannot be decoded (quarantine as ``unreadable``).
        TransientError, OSError: an environment error (retry; see `load_waves`).
    """
    try:
        return _decode(cut, sampling_rate)
    except Exception as exc:
        if classify(exc) == ENVIRONMENT:
            raise
        # lhotse wraps every backend error into one AudioLoadingError: tell a file system
        # problem from undecodable bytes by reading the bytes (raises TransientError).
        for path in source_files(cut):
            probe_readable(path)
        raise BadInputError(str(cut.id), describe(exc)) from exc


Result = dict[str, Any] | Quarantine


def load_waves(batch: Sequence[CutItem], sampling_rate: int
               ) -> tuple[list[Result], list[int], list[np.ndarray]]:
    """Decodes the cuts of `batch` as float32 mono at `sampling_rate` (resampled when needed).

    Returns:
        ``(out, slots, waves)``: `out` has one entry per cut, a `Quarantine` for cuts that
        cannot be used (``unreadable``, ``empty``, ``nan_or_inf``) and ``{"id": ...}`` for the
        others; `slots[j]` is the position in `out` of `waves[j]`, a float32 (S_j,) array.

    Raises:
        EnvironmentFailure: a cut's audio could not be read after the retries of the process's
            `speechtok.failures.RetryPolicy` (the shard must fail, not quarantine the cut).
    """
    out: list[Result] = []
    slots: list[int] = []
    waves: list[np.ndarray] = []
    for item in batch:
        try:
            wave = with_retries(partial(load_mono, item.cut, sampling_rate), item=item.id)
        except BadInputError as exc:  # undecodable bytes: the cut is unusable, the run goes on
            out.append(Quarantine(id=item.id, reason="unreadable", detail=exc.reason[:500]))
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
