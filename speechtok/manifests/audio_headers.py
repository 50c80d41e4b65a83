"""Length fields of uncompressed audio headers, read directly (libsndfile hides them).

libsndfile silently clamps a WAV ``data`` size or an AIFF ``COMM`` frame count that disagrees
with the bytes in the file, so a cut-off or mislabelled file decodes "cleanly". These parsers
read the first 64 KiB of a file and report what its header claims, for `audio_check`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class HeaderClaim:
    """What a header says about the sample data.

    Attributes:
        data_bytes: bytes the data chunk declares.
        available_bytes: bytes the file really holds after the data chunk's start.
        frames: the separate frame count field (AIFF ``COMM``), when the format has one.
    """

    data_bytes: int
    available_bytes: int
    frames: int | None = None


def _head(path: str, n: int = 1 << 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def riff_claim(path: str, file_size: int) -> HeaderClaim | None:
    """RIFF/WAVE: the ``data`` chunk's declared size; None if not RIFF or size left unset."""
    head = _head(path)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack("<I", head[pos + 4 : pos + 8])
        if chunk_id == b"data":
            if size in (0, 0xFFFFFFFF, 0x7FFFF000):  # streaming writers leave the size unset
                return None
            return HeaderClaim(data_bytes=size, available_bytes=file_size - (pos + 8))
        pos += 8 + size + (size & 1)
    return None


def aiff_claim(path: str, file_size: int) -> HeaderClaim | None:
    """AIFF/AIFC: ``SSND`` data size (minus its 8-byte offset/blocksize) and ``COMM`` frames."""
    head = _head(path)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return None
    pos = 12
    frames: int | None = None
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack(">I", head[pos + 4 : pos + 8])
        if chunk_id == b"COMM" and pos + 14 <= len(head):
            (frames,) = struct.unpack(">I", head[pos + 10 : pos + 14])
        elif chunk_id == b"SSND":
            return HeaderClaim(
                data_bytes=max(0, size - 8), available_bytes=file_size - (pos + 16), frames=frames
            )
        pos += 8 + size + (size & 1)
    return None


def header_claim(path: str, fmt: str, file_size: int) -> HeaderClaim | None:
    """The header claim for libsndfile major format `fmt` (``WAV``, ``WAVEX``, ``AIFF``), else None."""
    try:
        if fmt in ("WAV", "WAVEX"):
            return riff_claim(path, file_size)
        if fmt == "AIFF":
            return aiff_claim(path, file_size)
    except (OSError, struct.error):
        return None
    return None
