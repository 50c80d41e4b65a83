"""A local Hugging Face dataset: a ``save_to_disk`` directory or a folder of Parquet files.

One row is one utterance. The audio column (``--audio-column``, default ``audio``) is either
an ``Audio`` struct ``{"bytes": binary, "path": str}`` or a plain path string:

- embedded bytes are validated by decoding them with soundfile (the same checks as a file:
  ``unreadable``, ``truncated``, ``empty``, ``silent``, ...) and then referenced *in place*:
  the recording is a lhotse ``command`` source, ``python -m speechtok.hf_rows FILE ROW COLUMN``,
  which memory-maps the data file and writes that row's bytes (nothing is copied at ingest);
  or, with ``extract_dir`` (``--extract-flac``), written once to ``extract_dir/<id>.flac`` (the
  id made a safe file name by `speechtok.paths.file_stem_for_id`; FLAC
  input is copied byte for byte, other formats re-encoded losslessly: 16-bit PCM stays 16-bit,
  anything else becomes 24-bit) and referenced as a file;
- a path (a string, or a struct without bytes) is resolved against the dataset folder like a
  manifest path and referenced as a file.

Ids come from the id column (``--id-column``; default the first of ``id``, ``key``,
``utt_id``, ``segment_id``, ``audio_id`` present), else ``<file stem>-<row:08d>``. Text, speaker
and language columns default to the first present of `TEXT_COLUMNS`, `SPEAKER_COLUMNS`,
`LANGUAGE_COLUMNS`; naming a column the dataset lacks is a `ConfigError`. Other scalar columns
are kept in the supervision's ``custom`` fields.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from speechtok.errors import ConfigError, InputError
from speechtok.hf_rows import dataset_files, file_schema, iter_batches
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, remote_source, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.paths import file_stem_for_id

ID_COLUMNS = ("id", "key", "utt_id", "segment_id", "audio_id")
TEXT_COLUMNS = ("text", "sentence", "transcription", "transcript", "normalized_text")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id")
LANGUAGE_COLUMNS = ("language", "lang", "locale")


def _pick(schema: pa.Schema, flag: str, chosen: str | None, defaults: Sequence[str]) -> str | None:
    names = schema.names
    if chosen is not None:
        if chosen not in names:
            raise ConfigError(flag, chosen, f"must be a column of the dataset {names}")
        return chosen
    return next((c for c in defaults if c in names), None)


def _audio_kind(schema: pa.Schema, column: str) -> str:
    if column not in schema.names:
        raise ConfigError("audio_column", column, f"must be a column of the dataset {schema.names} (--audio-column)")
    t = schema.field(column).type
    if pa.types.is_struct(t) and {"bytes", "path"} <= {t.field(i).name for i in range(t.num_fields)}:
        return "struct"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "path"
    raise ConfigError(
        "audio_column", column,
        f"must hold an Audio struct {{bytes, path}} or a path string, but its type is {t}")


def in_place_command(path: Path, row: int, column: str) -> str:
    """The lhotse ``command`` source that reads one row's audio bytes from its data file."""
    return " ".join(shlex.quote(a) for a in (
        sys.executable, "-m", "speechtok.hf_rows", str(path.absolute()), str(row), column))


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def iter_hf(
    root: Path,
    *,
    audio_column: str = "audio",
    text_column: str | None = None,
    speaker_column: str | None = None,
    id_column: str | None = None,
    language: str | None = None,
    extract_dir: Path | None = None,
    rebase: bool = True,
) -> SourceStream:
    """Yields one `SourceItem` per row of the dataset at `root` (see the module docstring).

    Raises:
        InputError: `root` is not a Hugging Face dataset.
        ConfigError: a named column is absent, or the audio column has an unusable type.
    """
    root = Path(root)
    base = root if root.is_dir() else root.parent
    for path in dataset_files(root):
        schema = file_schema(path)
        kind = _audio_kind(schema, audio_column)
        text_c = _pick(schema, "text_column", text_column, TEXT_COLUMNS)
        spk_c = _pick(schema, "speaker_column", speaker_column, SPEAKER_COLUMNS)
        id_c = _pick(schema, "id_column", id_column, ID_COLUMNS)
        lang_c = _pick(schema, "language_column", None, LANGUAGE_COLUMNS)
        used = {audio_column, text_c, spk_c, id_c, lang_c}
        row0 = 0
        for batch in iter_batches(path):
            others = [c for c in batch.schema.names if c not in used]
            cols = {c: batch.column(c) for c in batch.schema.names}
            for j in range(batch.num_rows):
                row = row0 + j
                origin = f"{path}:{row}"
                raw_id = cols[id_c][j].as_py() if id_c else f"{path.stem}-{row:08d}"
                uid = str(raw_id)
                cell = cols[audio_column][j].as_py()
                custom = {c: v for c in others if _scalar(v := cols[c][j].as_py())}
                try:
                    if raw_id is None or uid == "":
                        raise InputError(str(id_c), f"is {raw_id!r} in this row; every row needs an id")
                    seg = SegmentSpec(
                        id=uid,
                        text=None if text_c is None else _str(text_c, cols[text_c][j].as_py()),
                        speaker=None if spk_c is None else _str(spk_c, cols[spk_c][j].as_py()),
                        language=(None if lang_c is None else _str(lang_c, cols[lang_c][j].as_py())) or language,
                        custom=custom or None,
                    )
                except InputError as exc:
                    yield Problem(reason="bad_entry", id=None if raw_id is None else uid, origin=origin,
                                  detail=f"column {exc}")
                    continue
                item = _item(cell, kind, uid, path, row, audio_column, origin, base, seg,
                             extract_dir, rebase)
                yield item
            row0 += batch.num_rows


def _str(column: str, v: Any) -> str | None:
    """A label cell as a string (None stays None).

    Raises:
        InputError: a list or struct cell (``str()`` would hide it, e.g. ``"['a', 'b']"``).
    """
    if isinstance(v, (list, dict)):
        raise InputError(column, f"must hold a string or a number, but holds {v!r}")
    return None if v is None else str(v)


def _item(cell: Any, kind: str, uid: str, path: Path, row: int, column: str, origin: str,
          base: Path, seg: SegmentSpec, extract_dir: Path | None, rebase: bool) -> SourceItem | Problem:
    data = cell.get("bytes") if kind == "struct" and cell else None
    ref = cell if kind == "path" else (cell or {}).get("path")
    if data:
        suffix = Path(str(ref)).suffix if ref else ""
        display = Path(f"{path}#row={row}{suffix}")
        if extract_dir is not None:
            dest = extract_dir / (file_stem_for_id(uid) + ".flac")
            return SourceItem(recording_id=uid, path=display, origin=origin, segments=(seg,),
                              data=bytes(data), extract_to=dest)
        return SourceItem(recording_id=uid, path=display, origin=origin, segments=(seg,),
                          data=bytes(data), command=in_place_command(path, row, column))
    if ref and (remote := remote_source(str(ref))) is not None:
        return Problem(reason="unsupported_source", id=uid, origin=origin, detail=remote)
    if ref:
        return SourceItem(recording_id=uid, path=resolve_audio_path(str(ref), base, rebase=rebase),
                          origin=origin, segments=(seg,))
    reason = "no_audio_for_transcript" if seg.has_transcript else "bad_entry"
    return Problem(reason=reason, id=uid, origin=origin,
                   detail=f"column `{column}` holds neither audio bytes nor a path")
