"""Decode an audio file once, in blocks, and say whether it can be used (and if not, why).

Memory is bounded by `AudioCheckConfig.block_frames` whatever the file's length: the check keeps
only per-channel running minima, maxima and a finiteness flag, never the waveform.

Reason codes (see `speechtok.manifests.quarantine.REASONS`): ``missing_file``, ``unreadable``,
``empty``, ``truncated``, ``duration_mismatch``, ``nan_or_inf``, ``bad_channels``,
``bad_sampling_rate``, and per used
channel ``silent`` / ``constant`` (`channel_problem`).

How truncation and header mismatches are told apart (libsndfile is the decoder):
- WAV and AIFF: the header's data size is compared with the bytes the file really holds; fewer
  bytes -> ``truncated`` (libsndfile itself silently clamps). An AIFF whose ``COMM`` frame count
  disagrees with complete ``SSND`` data -> ``duration_mismatch`` (see `audio_headers`).
- any format: a decoder error after the file opened -> ``truncated`` (a FLAC whose STREAMINFO
  claims more samples than the stream holds looks the same to libsndfile and lands here too).
- a clean decode whose sample count differs from the header's -> ``duration_mismatch``; lossy
  formats (MP3, Ogg Vorbis/Opus) only estimate their length, so they get a looser tolerance.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import numpy as np
import soundfile as sf

from speechtok.errors import ConfigError, check_at_least
from speechtok.failures import probe_readable
from speechtok.manifests.audio_headers import header_claim
from speechtok.manifests.quarantine import Problem

_LOSSY_FORMATS = frozenset({"MP3", "OGG"})


@dataclass(frozen=True, kw_only=True)
class AudioCheckConfig:
    """How strictly audio is checked.

    Attributes:
        max_channels: files with more channels are quarantined as ``bad_channels``.
        block_frames: frames decoded per block (bounds memory: block_frames * channels * 4 B).
        tolerance_s: allowed difference between a declared duration (header of a lossless file,
            or a manifest) and the decoded one.
        lossy_tolerance_s: the same for lossy formats, whose headers only estimate the length.
        min_sampling_rate, max_sampling_rate: files whose header states a rate outside this
            range (Hz) are quarantined as ``bad_sampling_rate`` (a corrupt header: a 1 Hz
            "sampling rate" makes 1 s of samples 4.4 hours, and resampling it fills memory).
    """

    max_channels: int = 2
    block_frames: int = 1 << 16
    tolerance_s: float = 0.025
    lossy_tolerance_s: float = 0.1
    min_sampling_rate: int = 1000
    max_sampling_rate: int = 384000

    def validate(self) -> None:
        check_at_least(1, max_channels=self.max_channels, min_sampling_rate=self.min_sampling_rate)
        if self.max_sampling_rate < self.min_sampling_rate:
            raise ConfigError("max_sampling_rate", self.max_sampling_rate,
                              f"must be >= min_sampling_rate ({self.min_sampling_rate})")
        if self.block_frames < 256:
            raise ConfigError("block_frames", self.block_frames, "must be >= 256")
        check_at_least(0, tolerance_s=self.tolerance_s, lossy_tolerance_s=self.lossy_tolerance_s)


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    """What a successful check learned about a file.

    Attributes:
        path: the file.
        sampling_rate: Hz.
        num_samples: samples per channel that decoded (not the header's claim).
        num_channels: channels in the file.
        format: libsndfile major format (``"WAV"``, ``"FLAC"``, ``"MP3"``, ...).
        subtype: libsndfile subtype (``"PCM_16"``, ``"FLOAT"``, ...).
        channel_min: per-channel minimum sample (float32 scale, [-1, 1] for PCM).
        channel_max: per-channel maximum sample.
        lossy: whether the format only estimates its length in the header.
    """

    path: str
    sampling_rate: int
    num_samples: int
    num_channels: int
    format: str
    subtype: str
    channel_min: tuple[float, ...]
    channel_max: tuple[float, ...]
    lossy: bool

    @property
    def duration(self) -> float:
        """Seconds of decodable audio."""
        return self.num_samples / self.sampling_rate

    def tolerance_samples(self, cfg: AudioCheckConfig) -> int:
        """How many samples a declared length may differ by for this file's format."""
        tol = cfg.lossy_tolerance_s if self.lossy else cfg.tolerance_s
        return max(1, int(round(tol * self.sampling_rate)))


def loader_problem(path: str | Path) -> Problem | None:
    """A problem when lhotse's default loader could not read `path` on this machine, else None.

    lhotse reads ``.sph`` through the external ``sph2pipe`` binary (not libsndfile), so a
    NIST SPHERE file that decodes here would still fail to load downstream without it.
    """
    if str(path).lower().endswith(".sph") and shutil.which("sph2pipe") is None:
        return Problem(
            reason="unsupported_source",
            path=str(path),
            detail="lhotse loads .sph files with the sph2pipe binary, which is not on PATH; "
            "run `lhotse install-sph2pipe` (and add it to PATH) or convert to FLAC "
            "(`sox in.sph out.flac`)",
        )
    return None


def whole_number(v: object) -> TypeGuard[int | float]:
    """True for an int, or a float with no fractional part (not a bool, a string or None): what a
    manifest may state as a count of samples or Hz."""
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def sampling_rate_problem(rate: object, cfg: AudioCheckConfig, source: str) -> Problem | None:
    """A ``bad_sampling_rate`` problem when `rate` is not a whole number of Hz in
    ``[cfg.min_sampling_rate, cfg.max_sampling_rate]``, else None.

    `rate`: what a header or manifest states (any JSON value: a string, bool or 16000.5 is not a
    rate); `source`: who states it, for the detail (``"the header states"``).
    """
    whole = whole_number(rate)
    if whole and cfg.min_sampling_rate <= rate <= cfg.max_sampling_rate:  # type: ignore[operator]
        return None
    if not whole:
        return Problem(reason="bad_sampling_rate", detail=f"{source} a sampling rate of {rate!r}, not a whole "
                       "number of Hz")
    return Problem(reason="bad_sampling_rate", detail=f"{source} {rate} Hz, outside [{cfg.min_sampling_rate}, "
                   f"{cfg.max_sampling_rate}] Hz (a corrupt {source.split()[-2]}, or raise check.max_sampling_rate "
                   "/ lower check.min_sampling_rate)")


def check_audio(path: str | Path, cfg: AudioCheckConfig | None = None) -> AudioInfo | Problem:
    """Decodes `path` block by block and returns its `AudioInfo`, or the `Problem` found.

    Per-channel checks (silence, DC) depend on which channel a cut uses; see `channel_problem`.

    Args:
        path: an audio file any libsndfile format can read (wav, flac, mp3, ogg/opus, sph, ...).
        cfg: thresholds; default `AudioCheckConfig()`.
    """
    cfg = cfg or AudioCheckConfig()
    spath = str(path)
    if not os.path.exists(spath):
        return Problem(reason="missing_file", path=spath, detail="no such file")
    loader = loader_problem(spath)
    if loader is not None:
        return loader
    if os.path.isdir(spath):
        return Problem(reason="unreadable", path=spath, detail="is a directory, not an audio file")
    if not os.path.isfile(spath):  # before opening it: reading a FIFO would block, /dev/zero never ends
        return Problem(reason="unreadable", path=spath, detail="is not a regular file (a FIFO, socket or device)")
    size = os.path.getsize(spath)
    if size == 0:
        return Problem(reason="empty", path=spath, detail="file has 0 bytes")
    try:
        fh = sf.SoundFile(spath)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
        probe_readable(spath)  # an OS-level read failure is the environment's: raises, retried
        return Problem(reason="unreadable", path=spath, detail=str(exc).replace(spath, "<file>"))
    with fh:
        sr, channels, header_frames = int(fh.samplerate), int(fh.channels), int(fh.frames)
        fmt, subtype = str(fh.format), str(fh.subtype)
        bad_rate = sampling_rate_problem(sr, cfg, "the header states")
        if bad_rate is not None:
            return Problem(reason=bad_rate.reason, path=spath, detail=bad_rate.detail)
        if channels > cfg.max_channels:
            return Problem(
                reason="bad_channels",
                path=spath,
                detail=f"{channels} channels; at most max_channels={cfg.max_channels} are supported "
                "(split or downmix multi-microphone audio first)",
            )
        cmin = np.full(channels, np.inf, dtype=np.float64)
        cmax = np.full(channels, -np.inf, dtype=np.float64)
        decoded = 0
        finite = True
        try:
            while True:
                block = fh.read(cfg.block_frames, dtype="float32", always_2d=True)  # (n, C)
                if block.shape[0] == 0:
                    break
                decoded += block.shape[0]
                if finite and not np.isfinite(block).all():
                    finite = False
                    continue
                if finite:
                    np.minimum(cmin, block.min(axis=0), out=cmin)
                    np.maximum(cmax, block.max(axis=0), out=cmax)
        except (sf.LibsndfileError, RuntimeError) as exc:
            probe_readable(spath)  # see above
            return Problem(
                reason="truncated",
                path=spath,
                detail=f"decoder failed after {decoded} of the header's {header_frames} samples: {exc}",
            )
    lossy = fmt in _LOSSY_FORMATS
    claim = header_claim(spath, fmt, size)
    if claim is not None and claim.data_bytes > claim.available_bytes:  # before `empty`: a header
        return Problem(  # whose data was cut off entirely is a truncated file, not an empty one
            reason="truncated",
            path=spath,
            detail=f"header declares {claim.data_bytes} data bytes but the file holds {claim.available_bytes}",
        )
    if decoded == 0:
        return Problem(reason="empty", path=spath, detail=f"no samples decoded ({fmt}/{subtype})")
    if claim is not None and claim.frames is not None and claim.frames != decoded:
        return Problem(
            reason="duration_mismatch",
            path=spath,
            detail=f"header declares {claim.frames} frames ({claim.frames / sr:.3f} s) but the data "
            f"holds {decoded} ({decoded / sr:.3f} s)",
        )
    info = AudioInfo(
        path=spath,
        sampling_rate=sr,
        num_samples=decoded,
        num_channels=channels,
        format=fmt,
        subtype=subtype,
        channel_min=tuple(float(v) for v in cmin),
        channel_max=tuple(float(v) for v in cmax),
        lossy=lossy,
    )
    if not finite:
        return Problem(reason="nan_or_inf", path=spath, detail="decoded samples contain NaN or inf")
    if abs(decoded - header_frames) > (info.tolerance_samples(cfg) if lossy else 0):
        return Problem(
            reason="duration_mismatch",
            path=spath,
            detail=f"header declares {header_frames} samples ({header_frames / sr:.3f} s) but "
            f"{decoded} decode ({decoded / sr:.3f} s)",
        )
    return info


def channel_problem(info: AudioInfo, channel: int) -> Problem | None:
    """``silent`` / ``constant`` / ``bad_channels`` for the channel a cut would use, else None."""
    if not 0 <= channel < info.num_channels:
        return Problem(
            reason="bad_channels",
            path=info.path,
            detail=f"channel {channel} requested but the file has {info.num_channels}",
        )
    lo, hi = info.channel_min[channel], info.channel_max[channel]
    if lo == hi == 0.0:
        return Problem(reason="silent", path=info.path, detail=f"channel {channel} is all zeros")
    if lo == hi:
        return Problem(
            reason="constant", path=info.path, detail=f"channel {channel} is constant at {lo:g}"
        )
    return None
