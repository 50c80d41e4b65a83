"""A JSONL list of utterances: one object per line,
``{"audio": path, "text": ..., "speaker": ..., "language": ..., "id": ..., "start": s,
"duration": s, "channel": c, "gender": ...}`` (only ``audio`` is required).

Relative ``audio`` paths are resolved against the JSONL file's directory. The id defaults to the
audio file's stem. ``duration`` (with or without ``start``) makes the entry a segment of the file;
a declared segment that runs past the end of the audio is a ``duration_mismatch``. Any other key
(``translation``, ``emotion``...) is kept in the supervision's ``custom`` fields.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, resolve_audio_path
from speechtok.manifests.quarantine import Problem

#: Keys read by the ingest; any other key of an entry (e.g. ``translation``) is kept in the
#: supervision's ``custom`` fields (and so in the shards' ``cut`` JSON), e.g. as the target of
#: speech translation (`speechtok train latent --set data.target=custom.translation`).
_KNOWN = frozenset({"id", "audio", "text", "speaker", "language", "gender", "start", "duration", "channel"})


def open_text(path: Path) -> IO[str]:
    """Opens a text file, transparently gunzipping `*.gz`."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return Path(path).open(encoding="utf-8")


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yields (line number, parsed object or None when unparsable, error text)."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, None, f"invalid JSON: {exc}"
                continue
            if not isinstance(obj, dict):
                yield lineno, None, f"expected a JSON object, found {type(obj).__name__}"
                continue
            yield lineno, obj, ""


def opt_str(obj: dict[str, Any], *keys: str) -> str | None:
    """The first of `keys` present (not None) in `obj`, as a string; None when none is."""
    for k in keys:
        v = obj.get(k)
        if v is not None:
            return str(v)
    return None


def iter_jsonl(path: Path, *, language: str | None = None, rebase: bool = True) -> SourceStream:
    """Yields one `SourceItem` per line of `path` (see the module docstring)."""
    path = Path(path)
    base = path.parent
    for lineno, obj, err in iter_json_lines(path):
        origin = f"{path}:{lineno}"
        if obj is None:
            yield Problem(reason="bad_entry", origin=origin, detail=err)
            continue
        audio = obj.get("audio")
        if not isinstance(audio, str) or not audio:
            reason = "no_audio_for_transcript" if obj.get("text") else "bad_entry"
            yield Problem(
                reason=reason,
                id=opt_str(obj, "id"),
                origin=origin,
                detail="entry has no `audio` path",
            )
            continue
        audio_path = resolve_audio_path(audio, base, rebase=rebase)
        uid = opt_str(obj, "id") or Path(audio).stem
        try:
            start = float(obj.get("start", 0.0))
            duration = None if obj.get("duration") is None else float(obj["duration"])
            channel = None if obj.get("channel") is None else int(obj["channel"])
        except (TypeError, ValueError) as exc:
            yield Problem(reason="bad_entry", id=uid, origin=origin, detail=f"bad number: {exc}")
            continue
        yield SourceItem(
            recording_id=uid,
            path=audio_path,
            origin=origin,
            segments=(
                SegmentSpec(
                    id=uid,
                    start=start,
                    duration=duration,
                    channel=channel,
                    text=opt_str(obj, "text"),
                    speaker=opt_str(obj, "speaker"),
                    language=opt_str(obj, "language") or language,
                    gender=opt_str(obj, "gender"),
                    custom={k: v for k, v in obj.items() if k not in _KNOWN} or None,
                ),
            ),
        )
