"""A NeMo manifest: JSONL, one utterance per line,
``{"audio_filepath": path, "duration": s, "offset": s, "text": ..., "lang": ..., "speaker": ...}``
(``audio_filepath`` and ``duration`` are required by NeMo; only ``audio_filepath`` here).

Relative paths are resolved against the manifest's directory (then the working directory, as
every source). A line with an ``offset`` is a segment ``[offset, offset + duration)`` of its
file and gets the id ``<stem>-<offset ms>-<duration ms>``; a line without one is the whole file,
id ``<stem>``, and its ``duration`` is checked against the audio (``duration_mismatch``).
``speaker`` (or ``spk``/``speaker_id``) and ``lang`` become the supervision's speaker and language;
any other key is kept in the supervision's ``custom`` fields.
"""

from __future__ import annotations

from pathlib import Path

from speechtok.errors import InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, remote_source, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.sources.jsonl import iter_json_lines, opt_float, opt_str

_SPEAKER_KEYS = ("speaker", "spk", "speaker_id")
_KNOWN = frozenset({"audio_filepath", "duration", "offset", "text", "lang", *_SPEAKER_KEYS})


def iter_nemo(path: Path, *, language: str | None = None, rebase: bool = True) -> SourceStream:
    """Yields one `SourceItem` per line of the NeMo manifest `path` (see the module docstring)."""
    path = Path(path)
    base = path.parent
    for lineno, obj, err in iter_json_lines(path):
        origin = f"{path}:{lineno}"
        if obj is None:
            yield Problem(reason="bad_entry", origin=origin, detail=err)
            continue
        audio = obj.get("audio_filepath")
        if not isinstance(audio, str) or not audio:
            reason = "no_audio_for_transcript" if obj.get("text") else "bad_entry"
            yield Problem(reason=reason, origin=origin, detail="entry has no `audio_filepath`")
            continue
        stem = Path(audio).stem
        remote = remote_source(audio)
        if remote is not None:
            yield Problem(reason="unsupported_source", id=stem, origin=origin, detail=remote)
            continue
        try:
            duration = opt_float(obj, "duration")
            offset = opt_float(obj, "offset")
            segment = offset is not None and (offset > 0 or duration is not None)
            if segment:
                uid = f"{stem}-{round((offset or 0.0) * 1000):08d}-{round((duration or 0.0) * 1000):08d}"
            else:
                uid = stem
            spec = SegmentSpec(
                id=uid,
                start=offset or 0.0,
                duration=duration if segment else None,
                text=opt_str(obj, "text"),
                speaker=opt_str(obj, *_SPEAKER_KEYS),
                language=opt_str(obj, "lang") or language,
                custom={k: v for k, v in obj.items() if k not in _KNOWN} or None,
            )
        except InputError as exc:
            yield Problem(reason="bad_entry", id=stem, origin=origin, detail=str(exc))
            continue
        yield SourceItem(
            recording_id=uid,
            path=resolve_audio_path(audio, base, rebase=rebase),
            origin=origin,
            segments=(spec,),
            declared_duration=None if segment else duration,
        )
