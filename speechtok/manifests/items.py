"""What every source reader yields: one `SourceItem` per recording (audio file).

A source (directory, Kaldi dir, JSONL, lhotse manifest) is an iterator of
``SourceItem | Problem``: problems found while reading the source itself (a transcript without
audio, an unparsable line, a piped command) come out in order with the items.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechtok.manifests.quarantine import Problem


@dataclass(frozen=True, kw_only=True)
class SegmentSpec:
    """One output cut of a recording.

    Attributes:
        id: the cut id (unique in the source).
        start: seconds from the recording's start.
        duration: seconds; None means "to the end of the recording".
        channel: channel of the recording the cut uses; None = the ingest's channel policy.
        text, speaker, language, gender: labels of the single supervision spanning the cut
            (used when `supervisions` is None).
        supervisions: lhotse supervision dicts, times relative to the cut start (lhotse cuts).
        custom: extra fields kept on the supervision (`SupervisionSegment.custom`).
    """

    id: str
    start: float = 0.0
    duration: float | None = None
    channel: int | None = None
    text: str | None = None
    speaker: str | None = None
    language: str | None = None
    gender: str | None = None
    supervisions: tuple[dict[str, Any], ...] | None = None
    custom: dict[str, Any] | None = None

    @property
    def has_transcript(self) -> bool:
        if self.supervisions is not None:
            return any(s.get("text") not in (None, "") for s in self.supervisions)
        return self.text is not None and self.text != ""


@dataclass(frozen=True, kw_only=True)
class SourceItem:
    """One audio file and the cuts to make from it.

    Attributes:
        recording_id: id of the lhotse `Recording`.
        path: the audio file (resolved; may not exist -> ``missing_file``).
        origin: where the item was declared (``wav.scp:12``, ``dir:/data``, ``cuts.json:3``).
        segments: one spec per output cut.
        declared_num_samples: samples per channel a manifest declares, if any (checked).
        declared_sampling_rate: the manifest's sampling rate, if any (checked).
        declared_duration: seconds a manifest declares (Kaldi ``reco2dur``), if any (checked).
        data: the encoded audio itself (a Hugging Face dataset's embedded bytes), validated
            instead of reading `path`; `path` then only names the item in reports.
        command: with `data`, the recording is this lhotse ``command`` source (reads the bytes
            in place) instead of a file.
        extract_to: with `data`, the validated audio is written to this FLAC file once and the
            recording references it.
    """

    recording_id: str
    path: Path
    origin: str
    segments: tuple[SegmentSpec, ...] = field(default_factory=tuple)
    declared_num_samples: int | None = None
    declared_sampling_rate: int | None = None
    declared_duration: float | None = None
    data: bytes | None = field(default=None, repr=False)
    command: str | None = None
    extract_to: Path | None = None


SourceStream = Iterator[SourceItem | Problem]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def remote_source(raw: str) -> str | None:
    """Why the audio reference `raw` is not read, when it is a URL (``https://``, ``s3://``,
    ``file://``...): the detail of its ``unsupported_source`` problem; None for a path."""
    if _URL.match(raw) is None:
        return None
    return f"URL {raw[:200]!r} is not fetched; download the audio and reference the local file"


def resolve_audio_path(raw: str, base: Path, *, rebase: bool = True) -> Path:
    """`_resolve` made absolute, with ``..`` and ``.`` collapsed (symlinks are not followed).

    Absolute, so that a manifest written from these paths reads the same files from any
    working directory (a path relative to the ingest's working directory would not).
    """
    return Path(os.path.abspath(_resolve(raw, base, rebase=rebase)))


def _resolve(raw: str, base: Path, *, rebase: bool = True) -> Path:
    """Finds the file a manifest means by `raw`.

    Order: an absolute path as is; `base / raw`; `cwd / raw`; then, when `rebase` is set and
    nothing exists yet, the longest trailing part of `raw` found under `base` or one of its
    three parents (lhotse's own fixtures say ``test/fixtures/libri/x.wav``). When nothing
    exists, returns `base / raw` (so that the item is quarantined as ``missing_file``).
    """
    p = Path(raw)
    if p.is_absolute():
        if p.exists() or not rebase:
            return p
        parts = p.parts[1:]
    else:
        for cand in (base / p, Path.cwd() / p):
            if cand.exists():
                return cand
        if not rebase:
            return base / p
        parts = p.parts
    bases = [base, *list(base.parents)[:3]]
    for k in range(0, len(parts)):
        tail = Path(*parts[k:])
        for b in bases:
            cand = b / tail
            if cand.exists():
                return cand
    return p if p.is_absolute() else base / p
