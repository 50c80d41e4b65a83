"""Reading the text files of a corpus (manifests, Kaldi files, transcripts) the way users write them.

One rule for every text file an ingest reads: UTF-8, a byte-order mark at the start of the
file is dropped (Windows editors write one), CRLF line ends read as LF. A line that is not
UTF-8 is reported on its own (`iter_lines` yields its error) so that one bad line is
quarantined instead of stopping the whole ingest, and `utf8_error` finds the strings that
UTF-8 cannot encode (a file name with undecodable bytes, a JSON ``\\udcff`` escape), which
could otherwise be read but never written to a manifest.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_BOM = b"\xef\xbb\xbf"


def open_text(path: Path) -> IO[str]:
    """Opens a UTF-8 text file (a leading BOM dropped), transparently gunzipping `*.gz`."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return Path(path).open(encoding="utf-8-sig")


def read_text(path: Path) -> str:
    """The whole of a small UTF-8 text file (a leading BOM dropped).

    Raises:
        UnicodeDecodeError: the file is not UTF-8.
    """
    return Path(path).read_text(encoding="utf-8-sig")


def iter_raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yields ``(line number, bytes)`` for each line of `path` (``*.gz`` gunzipped), without its
    line end (LF or CRLF) and without a leading BOM; not decoded (see `decode_line`)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            yield lineno, raw.rstrip(b"\r\n")


def decode_line(raw: bytes) -> tuple[str | None, str]:
    """``(line, "")`` for a UTF-8 line, ``(None, error)`` for one that is not, the error naming
    the byte and its column."""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1]
        return None, (f"line is not UTF-8 (byte 0x{bad.hex()} at column {exc.start + 1}); "
                      "convert the file to UTF-8, e.g. with iconv")


def iter_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """Yields ``(line number, line, "")`` for each line of `path` (``*.gz`` gunzipped), without
    its line end (LF or CRLF) and without a leading BOM; ``(line number, None, error)`` for a
    line that is not UTF-8, the error naming the byte and its column."""
    for lineno, raw in iter_raw_lines(path):
        line, err = decode_line(raw)
        yield lineno, line, err


def utf8_error(text: str) -> str | None:
    """The first character of `text` that UTF-8 cannot encode (a lone surrogate: undecodable
    bytes of a file name, or a JSON ``\\udXXX`` escape), backslash-escaped; None when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return printable(text[exc.start])
    return None


def printable(text: str) -> str:
    """`text` with what UTF-8 cannot encode written as backslash escapes (safe in any report)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
