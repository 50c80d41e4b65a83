"""A directory tree of audio files, labelled by sidecar `.txt` files, a TSV, or the file names.

Walks the tree in sorted order (deterministic), one directory listing in memory at a time.
The id of a file is its path relative to the root without the extension (``spk1/utt3``).

Labels, in increasing priority:
- ``speaker_from``: ``"top_dir"`` (first directory under the root, VCTK/demo-corpus layout),
  ``"parent_dir"`` (the file's directory) or ``"none"``;
- a regex on the file's stem with named groups ``text``, ``speaker``, ``language``
  (FSDD: ``(?P<text>\\d)_(?P<speaker>[a-z]+)_\\d+``);
- a TSV (``id<TAB>text``, or a header row naming ``id``, ``text``, ``speaker``, ``language``;
  ``id`` may also be the file name with its extension);
- a sidecar ``<stem>.txt`` (or ``.TXT``, any case) next to the audio (its stripped content is the
  text).

A sidecar `.txt` without audio is reported as ``no_audio_for_transcript``; so are TSV rows
that match no file (reported after the walk).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from speechtok.errors import ConfigError, InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.text_lines import printable, read_text, utf8_error

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".opus", ".sph", ".aif", ".aiff", ".au", ".w64", ".oga"}
)
SpeakerFrom = Literal["none", "top_dir", "parent_dir"]
_LABEL_GROUPS = ("text", "speaker", "language")


def compile_label_regex(pattern: str | None) -> re.Pattern[str] | None:
    """Compiles a label regex, checking that it names at least one of text/speaker/language."""
    if pattern is None:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError("label_regex", pattern, f"must be a valid Python regex ({exc})") from exc
    if not set(rx.groupindex) & set(_LABEL_GROUPS):
        raise ConfigError(
            "label_regex",
            pattern,
            "must have a named group (?P<text>...), (?P<speaker>...) or (?P<language>...)",
        )
    return rx


def read_text_tsv(path: Path) -> dict[str, dict[str, str]]:
    """Reads a transcript TSV into ``{id: {"text": ..., "speaker": ..., "language": ...}}``."""
    try:
        return _read_tsv_rows(path)
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"is not UTF-8 text ({exc}); convert it, e.g. with iconv") from exc


def _read_tsv_rows(path: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header: list[str] | None = None
        for lineno, row in enumerate(reader, start=1):
            if not row or not row[0].strip():
                continue
            if lineno == 1 and row[0].strip().lower() == "id":
                header = [c.strip().lower() for c in row]
                continue
            if header is None:
                if len(row) < 2:
                    raise InputError(f"{path}:{lineno}", "expected `id<TAB>text`, found one column")
                rows[row[0].strip()] = {"text": "\t".join(row[1:]).strip()}
            else:
                rows[row[0].strip()] = {
                    k: v.strip() for k, v in zip(header[1:], row[1:], strict=False) if k in _LABEL_GROUPS
                }
    return rows


def _walk(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """Yields (directory, sorted file names) depth-first, subdirectories in sorted order.

    Symlinked directories are followed once (a link cycle is not walked twice).
    """
    stack = [root]
    visited: set[tuple[int, int]] = set()
    while stack:
        d = stack.pop()
        st = d.stat()
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        files: list[str] = []
        dirs: list[Path] = []
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=True):
                    dirs.append(Path(e.path))
                else:  # files, broken links, FIFOs, devices: an audio name is checked, never skipped
                    files.append(e.name)
        yield d, sorted(files)
        stack.extend(sorted(dirs, reverse=True))


def iter_directory(
    root: Path,
    *,
    label_regex: str | None = None,
    text_tsv: Path | None = None,
    language: str | None = None,
    speaker_from: SpeakerFrom = "none",
) -> SourceStream:
    """Yields one `SourceItem` per audio file under `root` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "is not a directory")
    if speaker_from not in ("none", "top_dir", "parent_dir"):
        raise ConfigError("speaker_from", speaker_from, "must be one of none, top_dir, parent_dir")
    rx = compile_label_regex(label_regex)
    tsv = read_text_tsv(text_tsv) if text_tsv is not None else None
    for d, names in _walk(root):
        # stem -> its sidecar's name (`.txt` in any case: `A.TXT` is the transcript of `A.wav`)
        sidecars = {os.path.splitext(n)[0]: n for n in names if os.path.splitext(n)[1].lower() == ".txt"}
        stems_with_audio = {os.path.splitext(n)[0] for n in names if os.path.splitext(n)[1].lower() in AUDIO_EXTENSIONS}
        rel_dir = d.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in names:
            stem, ext = os.path.splitext(name)
            ext = ext.lower()
            rel = prefix + stem
            if ext == ".txt":
                if stem not in stems_with_audio:
                    yield Problem(
                        reason="no_audio_for_transcript",
                        id=rel,
                        path=str(d / name),
                        origin=str(root),
                        detail="sidecar transcript has no audio file with the same stem",
                    )
                continue
            if ext not in AUDIO_EXTENSIONS:
                continue
            bad_name = utf8_error(str(d / name))
            if bad_name is not None:
                yield Problem(
                    reason="unreadable",
                    id=printable(rel),
                    path=printable(str(d / name)),
                    origin=str(root),
                    detail=f"the path holds {bad_name}, a byte that is not UTF-8; rename the file "
                    "(e.g. `convmv -f latin1 -t utf8`)",
                )
                continue
            labels: dict[str, str | None] = {"text": None, "speaker": None, "language": language}
            rel_parts = rel.split("/")
            if speaker_from == "top_dir" and len(rel_parts) > 1:
                labels["speaker"] = rel_parts[0]
            elif speaker_from == "parent_dir" and len(rel_parts) > 1:
                labels["speaker"] = rel_parts[-2]
            if rx is not None:
                m = rx.fullmatch(stem)
                if m is not None:
                    for g in _LABEL_GROUPS:
                        if g in rx.groupindex and m.group(g) is not None:
                            labels[g] = m.group(g)
            if tsv is not None:
                row = tsv.pop(rel, None) or tsv.pop(name, None) or tsv.pop(stem, None)
                if row:
                    labels.update({k: v for k, v in row.items() if v})
            if stem in sidecars:
                sidecar = d / sidecars[stem]
                try:  # never open a FIFO or device (reading would block or never end)
                    text = read_text(sidecar).strip() if sidecar.is_file() else None
                    why = "is not a regular file (a FIFO, socket or device)" if text is None else ""
                except (OSError, UnicodeDecodeError) as exc:
                    text, why = None, f"cannot be read as UTF-8 text: {exc}"
                if text is None:
                    yield Problem(
                        reason="bad_entry",
                        id=rel,
                        path=str(d / name),
                        origin=str(sidecar),
                        detail=f"sidecar transcript {why}",
                    )
                    continue
                labels["text"] = text
            yield SourceItem(
                recording_id=rel,
                path=d / name,
                origin=str(root),
                segments=(
                    SegmentSpec(
                        id=rel,
                        text=labels["text"],
                        speaker=labels["speaker"],
                        language=labels["language"],
                    ),
                ),
            )
    for key in tsv or {}:
        yield Problem(
            reason="no_audio_for_transcript",
            id=key,
            origin=str(text_tsv),
            detail="TSV row matches no audio file under the root",
        )
