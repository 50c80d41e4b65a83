"""NeMo export: ``DEST/{split}_manifest.json``, NeMo's JSONL manifest, one object per cut:
``{"audio_filepath", "duration", "offset", "text", "lang", "speaker", "key"}`` (``offset`` only for
a segment of its recording; ``lang``/``speaker`` only when known), plus each token group named
with ``--group`` as an extra field (units: list of ints; codes: list of frames). Audio stays in
place. ``speechtok ingest --kind nemo`` reads it back. Cuts without a single audio file are refused
(`InputError` naming the cut). Streamed row by row (`speechtok.exports.jsonl`).

Also ``DEST/shar``: lhotse Shar for NeMo's lhotse dataloading, with the audio and every array
field group (units, codes, features) as extra Shar fields (see `speechtok.exports.shar`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from speechtok.exports.jsonl import CutRow, cut_rows, write_jsonl
from speechtok.exports.shar import export_shar


def _line(c: CutRow) -> dict[str, object]:
    """One line of NeMo's manifest."""
    line: dict[str, object] = {"audio_filepath": c.audio, "duration": c.duration, "key": c.key}
    if c.segment:
        line["offset"] = c.start
    line["text"] = c.row.get("text")
    for name, col in (("lang", "language"), ("speaker", "speaker")):
        if c.row.get(col):
            line[name] = str(c.row[col])
    return {**line, **c.tokens}


def export_nemo(out_dir: Path, dest: Path, groups: Sequence[str], split: str, *,
                shar_groups: Sequence[str] = ()) -> int:
    """Writes ``{split}_manifest.json`` and ``shar/`` (with `shar_groups`) into `dest`; returns rows."""
    n = write_jsonl(dest / f"{split}_manifest.json", cut_rows(out_dir, groups, ["speaker", "language"], "NeMo"),
                    _line)
    export_shar(out_dir, dest / "shar", shar_groups)
    return n
