"""NeMo export: ``DEST/{split}_manifest.json``, NeMo's JSONL manifest, one object per cut:
``{"audio_filepath", "duration", "offset", "text", "lang", "speaker", "key"}`` (``offset`` only for
a segment of its recording; ``lang``/``speaker`` only when known), plus each token group named
with ``--group`` as an extra field (units: list of ints; codes: list of frames). Audio stays in
place. ``speechtok ingest --kind nemo`` reads it back. Cuts without a single audio file are refused
(`InputError` naming the cut). Streamed row by row.

Also ``DEST/shar``: lhotse Shar for NeMo's lhotse dataloading, with the audio and every array
field group (units, codes, features) as extra Shar fields (see `speechtok.exports.shar`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from speechtok.errors import InputError
from speechtok.exports.shar import export_shar
from speechtok.exports.slam import recording_file
from speechtok.shards.reader import ShardDataset


def export_nemo(out_dir: Path, dest: Path, groups: Sequence[str], split: str, *,
                shar_groups: Sequence[str] = ()) -> int:
    """Writes ``{split}_manifest.json`` and ``shar/`` (with `shar_groups`) into `dest`; returns rows."""
    token_groups = [g for g in groups if g.split(".", 1)[0] in ("units", "codes")]
    ds = ShardDataset(out_dir, ("cuts", *token_groups),
                      ["cut", "text", "speaker", "language", "start", "duration", *token_groups])
    n = 0
    with open(dest / f"{split}_manifest.json", "w", encoding="utf-8") as fh:
        for row in ds:
            key = str(row["id"])
            rec = recording_file(row)
            if rec is None:
                raise InputError(f"{out_dir}:{key}", "has no single audio file in its cut; NeMo needs one")
            path, rec_dur = rec
            start, dur = float(row.get("start") or 0.0), float(row["duration"])
            line: dict[str, object] = {"audio_filepath": path, "duration": dur, "key": key}
            if start > 1e-3 or rec_dur - dur > 1e-2:
                line["offset"] = start
            line["text"] = row.get("text")
            for name, col in (("lang", "language"), ("speaker", "speaker")):
                if row.get(col):
                    line[name] = str(row[col])
            for g in token_groups:
                line[g] = row[g].tolist()
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            n += 1
    export_shar(out_dir, dest / "shar", shar_groups)
    return n
