"""Audio held as encoded bytes (a Hugging Face dataset's ``Audio`` cell): validation and FLAC extraction.

`check_audio_bytes` runs the very same checks as a file (`audio_check.check_audio`: header
claims, truncation, NaN, channels) on a private temporary copy of the bytes, so an embedded
WAV cut short is ``truncated`` exactly like a WAV file cut short; the temporary file's name is
replaced by the item's name in every detail. `extract_flac` writes validated audio once as FLAC.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import soundfile as sf

from speechtok import atomic
from speechtok.errors import BugError
from speechtok.manifests.audio_check import AudioCheckConfig, AudioInfo, check_audio
from speechtok.manifests.items import SourceItem
from speechtok.manifests.quarantine import Problem

#: libsndfile subtypes that FLAC stores exactly at 16 bits; any other is written as 24-bit.
_PCM16 = frozenset({"PCM_16", "PCM_S8", "PCM_U8", "PCM_8", "ALAW", "ULAW"})


def check_audio_bytes(item: SourceItem, cfg: AudioCheckConfig) -> AudioInfo | Problem:
    """`check_audio` of `item.data` (encoded audio bytes); names the item, not the temp file."""
    if item.data is None:
        raise BugError(f"check_audio_bytes: item {item.recording_id!r} carries no audio bytes; "
                       "check its file with `check_audio` instead")
    suffix = Path(str(item.path)).suffix if Path(str(item.path)).suffix.isascii() else ""
    fd, tmp = tempfile.mkstemp(prefix="speechtok-audio-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(item.data)
        found = check_audio(tmp, cfg)
    finally:
        os.unlink(tmp)
    name = str(item.path)
    if isinstance(found, Problem):
        return replace(found, path=name, detail=found.detail.replace(tmp, name))
    return replace(found, path=name)


def extract_flac(data: bytes, info: AudioInfo, dest: Path) -> None:
    """Writes validated audio `data` to `dest` (FLAC, atomically): FLAC bytes as they are,
    other formats decoded and re-encoded (16-bit PCM stays 16-bit, anything else 24-bit)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if info.format == "FLAC":
        atomic.write_bytes(dest, data)
        return
    wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # (S, C)
    subtype = "PCM_16" if info.subtype in _PCM16 else "PCM_24"
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="FLAC", subtype=subtype)
    atomic.write_bytes(dest, buf.getvalue())
