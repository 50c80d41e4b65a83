"""Turn one validated `SourceItem` into lhotse MonoCuts (or problems). Runs in workers.

`process_item` decodes the file once (`check_audio`), checks what the manifest declared
against what decoded, applies the channel policy, checks each segment's bounds and channel,
and builds one MonoCut per segment (and per channel with ``channel_policy="split"``), each
with the segment's supervision(s). Cuts are resampled lazily (lhotse `cut.resample`) when a
target rate is given; the audio files are never rewritten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeGuard

from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.audio import AudioSource

from speechtok.errors import ConfigError
from speechtok.failures import EnvironmentFailure, with_retries
from speechtok.manifests.audio_bytes import check_audio_bytes, extract_flac
from speechtok.manifests.audio_check import (
    AudioCheckConfig,
    AudioInfo,
    channel_problem,
    check_audio,
    sampling_rate_problem,
    whole_number,
)
from speechtok.manifests.items import SegmentSpec, SourceItem
from speechtok.manifests.quarantine import Problem

ChannelPolicy = Literal["first", "split", "reject"]


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """How items become cuts.

    Attributes:
        check: audio validation thresholds.
        channel_policy: for multi-channel files (up to ``check.max_channels``) whose manifest
            does not name a channel: ``"first"`` keeps channel 0, ``"split"`` makes one cut per
            channel (ids ``<id>_ch<c>``), ``"reject"`` quarantines them as ``bad_channels``.
        sample_rate: target rate in Hz (lazy lhotse resampling), or None to keep the file's.
    """

    check: AudioCheckConfig = field(default_factory=AudioCheckConfig)
    channel_policy: ChannelPolicy = "first"
    sample_rate: int | None = None

    def validate(self) -> None:
        self.check.validate()
        if self.channel_policy not in ("first", "split", "reject"):
            raise ConfigError("channel_policy", self.channel_policy, "must be one of first, split, reject")
        if self.sample_rate is not None and not 1000 <= self.sample_rate <= 384000:
            raise ConfigError("sample_rate", self.sample_rate, "must be between 1000 and 384000 Hz")


@dataclass(frozen=True, kw_only=True)
class ItemResult:
    """Cuts made from one item, and its problems (quarantined ones and flags)."""

    cuts: list[MonoCut]
    problems: list[Problem]


def _declared_problem(item: SourceItem, info: AudioInfo, cfg: AudioCheckConfig) -> Problem | None:
    sr = info.sampling_rate
    if item.declared_sampling_rate is not None and int(item.declared_sampling_rate) != sr:
        return Problem(
            reason="duration_mismatch",
            detail=f"manifest declares {item.declared_sampling_rate} Hz but the file is {sr} Hz",
        )
    tol = info.tolerance_samples(cfg)
    if item.declared_num_samples is not None and abs(int(item.declared_num_samples) - info.num_samples) > tol:
        return Problem(
            reason="duration_mismatch",
            detail=f"manifest declares {item.declared_num_samples} samples but {info.num_samples} decode",
        )
    if item.declared_duration is not None and abs(item.declared_duration - info.duration) > tol / sr:
        return Problem(
            reason="duration_mismatch",
            detail=f"manifest declares {item.declared_duration:.3f} s but {info.duration:.3f} s decode",
        )
    return None


def _segment_problem(seg: SegmentSpec, duration: float, sampling_rate: int) -> str | None:
    """Why the segment (`duration` s from ``seg.start``) or one of its lhotse supervisions is not
    a usable span of time, or None."""
    if not (math.isfinite(seg.start) and math.isfinite(duration)) or seg.start < 0 or duration <= 0:
        return f"start={seg.start} s, duration={duration} s"
    if round(duration * sampling_rate) < 1:
        return f"duration={duration} s is less than one sample at {sampling_rate} Hz"
    for sup in seg.supervisions or ():
        start, dur = sup.get("start", 0.0), sup.get("duration")
        if not (_finite(start) and _finite(dur) and dur > 0):
            return f"supervision {sup.get('id')!r} has start={start!r}, duration={dur!r} (need finite, duration > 0)"
    return None


def _finite(v: object) -> TypeGuard[float]:
    """True for a finite int or float (not a bool, a string or None)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _item_id(item: SourceItem) -> str:
    """The id a problem of the whole item is reported under: its cut's id when it makes one cut
    (a lhotse cut names its recording otherwise), else the recording's."""
    return item.segments[0].id if len(item.segments) == 1 else item.recording_id


def _whole_item(item: SourceItem, problem: Problem) -> ItemResult:
    """No cut of `item`: `problem` (about its audio or what its manifest declared) for all of it."""
    return ItemResult(cuts=[], problems=[Problem(
        reason=problem.reason, detail=problem.detail + _lost(item), id=_item_id(item), path=str(item.path),
        origin=item.origin)])


def _lost(item: SourceItem) -> str:
    """`` (N segments: a, b, ...)`` naming what a whole-item problem loses, when it is several."""
    n = len(item.segments)
    if n <= 1:
        return ""
    names = ", ".join(seg.id for seg in item.segments[:10])
    return f" ({n} segments: {names}{', ...' if n > 10 else ''})"


def _recording(item: SourceItem, info: AudioInfo) -> Recording:
    if item.data is not None and item.command is not None:
        kind, source = "command", item.command
    elif item.data is not None and item.extract_to is not None:
        kind, source = "file", str(item.extract_to)
    else:
        kind, source = "file", str(item.path)
    return Recording(
        id=item.recording_id,
        sources=[AudioSource(type=kind, channels=list(range(info.num_channels)), source=source)],
        sampling_rate=info.sampling_rate,
        num_samples=info.num_samples,
        duration=info.num_samples / info.sampling_rate,
    )


def _supervisions(seg: SegmentSpec, cut_id: str, rec_id: str, duration: float, ch: int) -> list[SupervisionSegment]:
    if seg.supervisions is not None:
        return [SupervisionSegment.from_dict(dict(s, recording_id=rec_id)) for s in seg.supervisions]
    return [
        SupervisionSegment(
            id=cut_id,
            recording_id=rec_id,
            start=0.0,
            duration=duration,
            channel=ch,
            text=seg.text,
            speaker=seg.speaker,
            language=seg.language,
            gender=seg.gender,
            custom=seg.custom,
        )
    ]


def process_item(item: SourceItem, cfg: BuildConfig) -> ItemResult:
    """Validates `item`'s audio and builds its cuts; never returns for an environment error.

    Failures are classified by `speechtok.failures`: an environment error (an `OSError` other
    than a decoder's format error, `MemoryError`) is retried with backoff and then raises
    `EnvironmentFailure` naming the file, so that ingest fails loudly instead of quarantining
    a file that a flaky mount could not read. Any other unexpected error while handling one
    item (a decoder crash, malformed lhotse fields) quarantines that item as ``bad_entry`` with
    the error text, so that one item never stops a run.
    """
    try:
        return with_retries(partial(_process_item, item, cfg), item=str(item.path))
    except EnvironmentFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the quarantine with its text
        return ItemResult(
            cuts=[],
            problems=[
                Problem(
                    reason="bad_entry",
                    id=_item_id(item),
                    path=str(item.path),
                    origin=item.origin,
                    detail=f"{type(exc).__name__}: {exc}{_lost(item)}",
                )
            ],
        )


def _process_item(item: SourceItem, cfg: BuildConfig) -> ItemResult:
    path = str(item.path)
    if item.declared_sampling_rate is not None:  # a manifest's rate, range-checked like a header's
        bad_rate = sampling_rate_problem(item.declared_sampling_rate, cfg.check, "the manifest declares")
        if bad_rate is not None:
            return _whole_item(item, bad_rate)
    n: object = item.declared_num_samples  # any JSON value a manifest holds
    if n is not None and not (whole_number(n) and n >= 0):
        return _whole_item(item, Problem(reason="bad_entry", detail=f"the manifest declares num_samples {n!r}, "
                                         "not a whole number of samples >= 0"))
    found = check_audio(item.path, cfg.check) if item.data is None else check_audio_bytes(item, cfg.check)
    if isinstance(found, Problem):
        return _whole_item(item, found)
    info = found
    declared = _declared_problem(item, info, cfg.check)
    if declared is not None:
        return _whole_item(item, declared)
    if item.data is not None and item.extract_to is not None:
        extract_flac(item.data, info, item.extract_to)
    rec = _recording(item, info)
    cuts: list[MonoCut] = []
    problems: list[Problem] = []
    tol_s = info.tolerance_samples(cfg.check) / info.sampling_rate

    def bad(reason: str, detail: str, sid: str) -> None:
        problems.append(Problem(reason=reason, detail=detail, id=sid, path=path, origin=item.origin))

    for seg in item.segments:
        if seg.channel is not None:
            channels = [seg.channel]
        elif info.num_channels == 1 or cfg.channel_policy == "first":
            channels = [0]
        elif cfg.channel_policy == "split":
            channels = list(range(info.num_channels))
        else:
            bad("bad_channels", f"{info.num_channels} channels and channel_policy='reject'", seg.id)
            continue
        duration = seg.duration if seg.duration is not None else rec.duration - seg.start
        why = _segment_problem(seg, duration, info.sampling_rate)
        if why is not None:
            bad("bad_segment", why, seg.id)
            continue
        if seg.start + duration > rec.duration + tol_s:
            bad(
                "duration_mismatch",
                f"segment [{seg.start:.3f}, {seg.start + duration:.3f}] s ends after the recording "
                f"({rec.duration:.3f} s)",
                seg.id,
            )
            continue
        duration = min(duration, rec.duration - seg.start)
        for ch in channels:
            cut_id = seg.id if len(channels) == 1 else f"{seg.id}_ch{ch}"
            cp = channel_problem(info, ch)
            if cp is not None:
                bad(cp.reason, cp.detail, cut_id)
                continue
            try:
                sups = _supervisions(seg, cut_id, rec.id, duration, ch)
            except (KeyError, TypeError, ValueError) as exc:  # a malformed lhotse supervision dict
                bad("bad_entry", f"bad supervision: {type(exc).__name__}: {exc}", cut_id)
                continue
            cut = MonoCut(
                id=cut_id,
                start=seg.start,
                duration=duration,
                channel=ch,
                supervisions=sups,
                recording=rec,
                custom=seg.custom if seg.supervisions is not None else None,
            )
            if cfg.sample_rate is not None and cfg.sample_rate != rec.sampling_rate:
                cut = cut.resample(cfg.sample_rate)
            cuts.append(cut)
            if not seg.has_transcript:
                problems.append(
                    Problem(
                        reason="no_transcript", id=cut_id, path=path, origin=item.origin, detail="kept without text"
                    )
                )
    return ItemResult(cuts=cuts, problems=problems)
