"""Quarantine records: why an item of a corpus cannot be used (or is kept with a flag).

On disk, `OUT/quarantine.jsonl` holds one JSON object per line:
``{"id": str | null, "path": str | null, "reason": "<code>", "detail": str, "kept": bool,
"origin": str}``. ``kept`` is true only for flags (the cut is in `cuts.jsonl.gz` and also
listed here, e.g. ``no_transcript``). ``origin`` says where the item was declared
(``wav.scp:12``, ``manifest.jsonl:3``, a directory path).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from speechtok.atomic import fsync_dir
from speechtok.errors import BugError

#: Stable reason codes and what each means. Flags (kept items) are in `FLAGS`.
REASONS: dict[str, str] = {
    "missing_file": "the audio file does not exist",
    "unreadable": "the file exists but no decoder can open it (not audio, unknown format, permission)",
    "truncated": "the decoder stopped before the end the header declares (file cut short or corrupt)",
    "empty": "zero bytes, or a valid header with zero samples",
    "silent": "every sample of the used channel is exactly zero",
    "constant": "every sample of the used channel has the same non-zero value (DC only)",
    "nan_or_inf": "the decoded samples contain NaN or +-inf",
    "duration_mismatch": (
        "the duration the header or manifest declares disagrees with the decodable samples, "
        "or a segment ends after its recording"
    ),
    "bad_channels": "unsupported channel layout (more channels than `max_channels`, or a missing channel)",
    "bad_sampling_rate": "the header or manifest states a sampling rate outside the checked range (corrupt), "
    "or a manifest's rate is not a whole number of Hz",
    "bad_segment": "a segment with a negative, NaN or infinite start, or a duration that is not positive "
    "and finite or shorter than one sample",
    "unsupported_source": "not a plain audio file (piped command, URL, in-memory, multi-source, mixed cut)",
    "unknown_recording": "a segment or supervision refers to a recording the source does not list",
    "no_audio_for_transcript": "a transcript whose audio is not in the source",
    "duplicate_id": "an id already used by an earlier item of the source",
    "bad_entry": "a manifest line that cannot be parsed or lacks required fields",
    "no_transcript": "(flag; kept) audio without a transcript",
}
FLAGS: frozenset[str] = frozenset({"no_transcript"})


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One quarantined (or flagged) item.

    Attributes:
        reason: a code from `REASONS`.
        detail: a human-readable sentence with the offending values.
        id: the item's id when known.
        path: the audio path when known.
        origin: where the item was declared (file:line or directory).
    """

    reason: str
    detail: str = ""
    id: str | None = None
    path: str | None = None
    origin: str | None = None

    @property
    def kept(self) -> bool:
        """True for flags: the item is kept in the manifest and also listed."""
        return self.reason in FLAGS

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "path": self.path,
            "reason": self.reason,
            "detail": self.detail,
            "kept": self.kept,
            "origin": self.origin,
        }

    def describe(self) -> str:
        """`path-or-id: reason (detail)` for messages."""
        what = self.path or self.id or self.origin or "<item>"
        return f"{what}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


class QuarantineWriter:
    """Writes `Problem` records to a temporary JSONL file and counts them by reason.

    Use as a context manager. The records go to ``.NAME.<pid>.tmp`` next to `path`; a clean
    exit flushes and fsyncs it, and `commit()` then renames it over `path` (the caller commits
    once the manifest it belongs to is committed, so an earlier `quarantine.jsonl` is never
    truncated by a run that does not finish). An exception removes the temporary file. The file
    is created (empty) even when nothing is quarantined.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.tmp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.counts: Counter[str] = Counter()
        self._fh: IO[str] | None = None
        self._ready = False

    def __enter__(self) -> QuarantineWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a path with undecodable bytes is written escaped, never a crash
        self._fh = self.tmp_path.open("w", encoding="utf-8", errors="backslashreplace")
        return self

    def write(self, problem: Problem) -> None:
        if self._fh is None:
            raise BugError("QuarantineWriter.write() called outside its `with` block")
        self._fh.write(json.dumps(problem.to_dict(), ensure_ascii=False) + "\n")
        self.counts[problem.reason] += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        if exc_type is None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            self._ready = True
        else:
            fh.close()
            self.tmp_path.unlink(missing_ok=True)

    def commit(self) -> None:
        """Renames the finished temporary file over `path` (atomic; the directory fsynced)."""
        if not self._ready:
            raise BugError("QuarantineWriter.commit() before a clean exit of its `with` block")
        os.replace(self.tmp_path, self.path)
        fsync_dir(self.path.parent)
        self._ready = False

    def discard(self) -> None:
        """Removes the temporary file (the run it belongs to failed after the `with` block)."""
        self.tmp_path.unlink(missing_ok=True)
        self._ready = False


def read_quarantine(path: Path) -> list[dict[str, object]]:
    """Reads a `quarantine.jsonl` file into a list of dicts (for tests and reports)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
