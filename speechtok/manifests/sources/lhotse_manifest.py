"""Existing lhotse manifests: a CutSet, or a RecordingSet with its SupervisionSet.

Accepted: eager ``.json`` / ``.json.gz`` arrays (read whole; lhotse's eager format) and lazy
``.jsonl`` / ``.jsonl.gz`` files (streamed line by line). A directory is searched for
``cuts*.json[l][.gz]``, or ``recordings*`` with ``supervisions*``. A recordings file alone is
paired with ``supervisions`` in its name when such a sibling exists, or with the
`supervisions` argument.

Each MonoCut whose recording has exactly one ``file`` source becomes an item (its window,
channel and supervisions kept); recordings with supervisions give one cut per supervision
(like Kaldi ``segments``), and a recording without supervisions one cut spanning it (flagged
``no_transcript``). Command, URL and in-memory sources, multi-source recordings and
MultiCut/MixedCut are ``unsupported_source``. Audio paths are resolved by `resolve_audio_path`.
Manifest-declared ``num_samples`` / ``sampling_rate`` are checked against the decoded audio.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechtok.errors import InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.sources.jsonl import iter_json_lines
from speechtok.manifests.text_lines import open_text, utf8_error

#: File names of lhotse manifests (and JSON(L) lists).
MANIFEST_SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")


def manifest_kind(obj: dict[str, Any]) -> str:
    """``"cuts"``, ``"recordings"``, ``"supervisions"`` or ``"utterances"`` (speechtok JSONL)."""
    if "audio" in obj and "sources" not in obj:
        return "utterances"
    if "sources" in obj:
        return "recordings"
    if "recording" in obj or obj.get("type") in ("MonoCut", "MultiCut", "MixedCut", "PaddingCut"):
        return "cuts"
    if "recording_id" in obj:
        return "supervisions"
    return "unknown"


def iter_manifest_dicts(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    """Yields (origin, object or None, error) from an eager JSON array or a JSONL file."""
    name = path.name
    if name.endswith(".json") or name.endswith(".json.gz"):
        with open_text(path) as fh:
            try:
                data = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(str(path), f"is not valid UTF-8 JSON: {exc}") from exc
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise InputError(str(path), "must hold a JSON array of lhotse manifest objects")
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                yield f"{path}[{i}]", None, "not a JSON object"
                continue
            bad = utf8_error(json.dumps(obj, ensure_ascii=False))
            if bad is not None:
                yield f"{path}[{i}]", None, f"the escape {bad} is a lone surrogate, which UTF-8 cannot encode"
                continue
            yield f"{path}[{i}]", obj, ""
        return
    for lineno, obj, err in iter_json_lines(path):
        yield f"{path}:{lineno}", obj, err


def first_manifest_object(path: Path) -> dict[str, Any] | None:
    """The first object of a JSON/JSONL manifest (for kind detection), or None."""
    for _, obj, _ in iter_manifest_dicts(path):
        if obj is not None:
            return obj
    return None


def find_manifests(path: Path, supervisions: Path | None = None) -> tuple[Path, Path | None]:
    """Resolves `path` to (cuts-or-recordings file, supervisions file or None)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(MANIFEST_SUFFIXES))
        cuts = [p for p in files if p.name.startswith("cuts")]
        recs = [p for p in files if p.name.startswith("recordings")]
        sups = [p for p in files if p.name.startswith("supervisions")]
        if len(cuts) == 1:
            return cuts[0], None
        if len(recs) == 1:
            return recs[0], supervisions or (sups[0] if len(sups) == 1 else None)
        raise InputError(
            str(path),
            "holds no single lhotse cuts*.json[l][.gz] or recordings*.json[l][.gz] manifest; "
            "pass the manifest file itself",
        )
    if supervisions is None and "recordings" in path.name:
        sibling = path.with_name(path.name.replace("recordings", "supervisions"))
        if sibling.exists():
            supervisions = sibling
    return path, supervisions


def _single_file_source(rec: dict[str, Any]) -> tuple[str | None, str]:
    """(source path, "") when `rec` reads one plain file, else (None, why not)."""
    sources = rec.get("sources") or []
    if len(sources) != 1:
        return None, f"recording has {len(sources)} audio sources; only one file source is supported"
    src = sources[0]
    if src.get("type") != "file":
        return None, f"audio source of type {src.get('type')!r} ({str(src.get('source'))[:80]!r}) is not a file"
    return str(src.get("source")), ""


def _item(
    rec: dict[str, Any], segments: tuple[SegmentSpec, ...], origin: str, base: Path, rebase: bool
) -> SourceItem | Problem:
    raw, why = _single_file_source(rec)
    if raw is None:
        return Problem(reason="unsupported_source", id=rec.get("id"), origin=origin, detail=why)
    return SourceItem(
        recording_id=str(rec.get("id")),
        path=resolve_audio_path(raw, base, rebase=rebase),
        origin=origin,
        segments=segments,
        declared_num_samples=rec.get("num_samples"),
        declared_sampling_rate=rec.get("sampling_rate"),
    )


def _iter_cuts(path: Path, rebase: bool) -> SourceStream:
    for origin, cut, err in iter_manifest_dicts(path):
        if cut is None:
            yield Problem(reason="bad_entry", origin=origin, detail=err)
            continue
        ctype = cut.get("type", "MonoCut")
        if ctype != "MonoCut" or not isinstance(cut.get("recording"), dict):
            yield Problem(
                reason="unsupported_source",
                id=cut.get("id"),
                origin=origin,
                detail=f"{ctype} without a single recording is not supported; give MonoCuts",
            )
            continue
        try:
            seg = SegmentSpec(
                id=str(cut["id"]),
                start=float(cut.get("start", 0.0)),
                duration=float(cut["duration"]),
                channel=int(cut.get("channel", 0)),
                supervisions=tuple(cut.get("supervisions") or ()),
                custom=cut.get("custom"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            yield Problem(reason="bad_entry", id=cut.get("id"), origin=origin, detail=f"bad cut: {exc!r}")
            continue
        yield _item(cut["recording"], (seg,), origin, path.parent, rebase)


def _sup_segment(sup: dict[str, Any]) -> SegmentSpec:
    channel = sup.get("channel", 0)
    if isinstance(channel, list):
        channel = channel[0] if channel else 0
    rel = dict(sup, start=0.0)
    return SegmentSpec(
        id=str(sup["id"]),
        start=float(sup["start"]),
        duration=float(sup["duration"]),
        channel=int(channel),
        supervisions=(rel,),
    )


def _iter_recordings(path: Path, sup_path: Path | None, rebase: bool) -> SourceStream:
    by_rec: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if sup_path is not None:
        for origin, sup, err in iter_manifest_dicts(sup_path):
            if sup is None or "recording_id" not in sup or "id" not in sup:
                yield Problem(reason="bad_entry", origin=origin, detail=err or "not a supervision")
                continue
            by_rec[str(sup["recording_id"])].append(sup)
    for origin, rec, err in iter_manifest_dicts(path):
        if rec is None or "id" not in rec:
            yield Problem(reason="bad_entry", origin=origin, detail=err or "recording without id")
            continue
        sups = by_rec.pop(str(rec["id"]), [])
        segs: list[SegmentSpec] = []
        for sup in sups:  # a malformed supervision loses itself only, not its recording's others
            try:
                segs.append(_sup_segment(sup))
            except (KeyError, TypeError, ValueError) as exc:
                yield Problem(reason="bad_entry", id=str(sup["id"]), origin=origin,
                              detail=f"bad supervision of recording {rec['id']!r}: {exc!r}")
        if sups and not segs:
            continue
        yield _item(rec, tuple(segs) or (SegmentSpec(id=str(rec["id"])),), origin, path.parent, rebase)
    for rec_id, sups in by_rec.items():
        for sup in sups:
            yield Problem(
                reason="no_audio_for_transcript" if sup.get("text") else "unknown_recording",
                id=str(sup["id"]),
                origin=str(sup_path),
                detail=f"supervision refers to recording {rec_id!r}, which the recordings manifest lacks",
            )


def iter_lhotse(path: Path, *, supervisions: Path | None = None, rebase: bool = True) -> SourceStream:
    """Yields items from a lhotse manifest file or directory (see the module docstring)."""
    main, sups = find_manifests(Path(path), supervisions)
    first = first_manifest_object(main)
    kind = manifest_kind(first) if first is not None else "empty"
    if kind == "cuts":
        yield from _iter_cuts(main, rebase)
    elif kind == "recordings":
        yield from _iter_recordings(main, sups, rebase)
    elif kind == "empty":  # no usable object: each line that is there is a bad entry
        for origin, _, err in iter_manifest_dicts(main):
            yield Problem(reason="bad_entry", origin=origin, detail=err)
    else:
        raise InputError(
            str(main),
            f"holds lhotse {kind}, not cuts or recordings; pass the recordings manifest "
            "(with --supervisions) or a cuts manifest (or --kind jsonl / --kind nemo for a list "
            "of utterances whose first entry lacks its `audio` / `audio_filepath`)",
        )
