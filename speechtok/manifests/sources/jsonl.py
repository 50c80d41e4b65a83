"""A JSONL list of utterances: one object per line,
``{"audio": path, "text": ..., "speaker": ..., "language": ..., "id": ..., "start": s,
"duration": s, "channel": c, "gender": ...}`` (only ``audio`` is required).

Relative ``audio`` paths are resolved against the JSONL file's directory. The id defaults to the
audio file's stem. ``duration`` (with or without ``start``) makes the entry a segment of the file;
a declared segment that runs past the end of the audio is a ``duration_mismatch``. Any other key
(``translation``, ``emotion``...) is kept in the supervision's ``custom`` fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechtok.errors import InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, remote_source, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.text_lines import iter_lines, utf8_error

#: Keys read by the ingest; any other key of an entry (e.g. ``translation``) is kept in the
#: supervision's ``custom`` fields (and so in the shards' ``cut`` JSON), e.g. as the target of
#: speech translation (`speechtok train latent --set data.target=custom.translation`).
_KNOWN = frozenset({"id", "audio", "text", "speaker", "language", "gender", "start", "duration", "channel"})


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yields (line number, parsed object or None when unusable, error text).

    A line is unusable when it is not UTF-8, not JSON, not a JSON object, or holds a string
    that UTF-8 cannot encode (a lone ``\\udXXX`` escape); a leading BOM and CRLF ends are fine.
    """
    for lineno, line, err in iter_lines(path):
        if line is None:
            yield lineno, None, err
            continue
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
        if "\\u" in line:  # only escapes can smuggle in a lone surrogate
            bad = utf8_error(json.dumps(obj, ensure_ascii=False))
            if bad is not None:
                yield lineno, None, f"the escape {bad} is a lone surrogate, which UTF-8 cannot encode"
                continue
        yield lineno, obj, ""


def opt_str(obj: dict[str, Any], *keys: str) -> str | None:
    """The first of `keys` present (not None) in `obj`, as a string; None when none is.

    Raises:
        InputError: the value is a list, an object or a boolean (a manifest error that
            ``str()`` would hide, e.g. ``"text": ["a", "b"]``).
    """
    for k in keys:
        v = obj.get(k)
        if v is None:
            continue
        if isinstance(v, (list, dict, bool)):
            raise InputError(k, f"must be a string or a number, but is {v!r} instead")
        return str(v)
    return None


def opt_float(obj: dict[str, Any], key: str) -> float | None:
    """``obj[key]`` as a finite float (a number or a numeric string), None when absent/null.

    Raises:
        InputError: not a number (booleans included), or NaN/infinite.
    """
    v = obj.get(key)
    if v is None:
        return None
    try:
        f = float(v) if isinstance(v, (int, float, str)) and not isinstance(v, bool) else None
    except ValueError:
        f = None
    if f is None:
        raise InputError(key, f"must be a number, but is {v!r} instead")
    if not math.isfinite(f):
        raise InputError(key, f"must be finite, but is {v!r} instead")
    return f


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    """``obj[key]`` as an int (an integral number or numeric string), None when absent/null.

    Raises:
        InputError: not an integral number.
    """
    v = obj.get(key)
    if v is None:
        return None
    f = opt_float(obj, key)
    if f is None or f != int(f):
        raise InputError(key, f"must be an integer, but is {v!r} instead")
    return int(f)


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
        try:
            uid = opt_str(obj, "id") or Path(audio).stem
        except InputError as exc:
            yield Problem(reason="bad_entry", origin=origin, detail=str(exc))
            continue
        remote = remote_source(audio)
        if remote is not None:
            yield Problem(reason="unsupported_source", id=uid, origin=origin, detail=remote)
            continue
        audio_path = resolve_audio_path(audio, base, rebase=rebase)
        try:
            start = opt_float(obj, "start")
            spec = SegmentSpec(
                id=uid,
                start=0.0 if start is None else start,
                duration=opt_float(obj, "duration"),
                channel=_opt_int(obj, "channel"),
                text=opt_str(obj, "text"),
                speaker=opt_str(obj, "speaker"),
                language=opt_str(obj, "language") or language,
                gender=opt_str(obj, "gender"),
                custom={k: v for k, v in obj.items() if k not in _KNOWN} or None,
            )
        except InputError as exc:
            yield Problem(reason="bad_entry", id=uid, path=str(audio_path), origin=origin, detail=str(exc))
            continue
        yield SourceItem(recording_id=uid, path=audio_path, origin=origin, segments=(spec,))
