"""``--to hf-audio``: a Hugging Face dataset with an ``Audio`` column, as Ultravox-style pipelines load it.

``DEST`` is what ``Dataset.save_to_disk`` writes, so ``datasets.load_from_disk(DEST)`` reads it
on a machine without speechtok:

- ``data-00000-of-00001.arrow``: Arrow IPC stream, written batch by batch (memory flat in
  corpus size); ``huggingface`` schema metadata with the features;
- ``dataset_info.json`` (features; ``description`` holds every group's provenance JSON) and
  ``state.json`` (data files, fingerprint = hash of the groups' fingerprints).

Columns: ``id``, ``audio`` (``Audio`` struct ``{bytes, path}``: the original file's bytes for a
whole-file cut, else the cut's samples as 24-bit FLAC), ``text``, ``speaker``, ``language``,
``duration``, ``sampling_rate``, then one column per field group named like `ShardDataset` row
keys (``units.km50`` ``list<uint16>``, ``units.km50.durations``, ``codes.q4``
``list<fixed_size_list<uint16, Q>>`` (T, Q), ``feats.fbank`` ``list<fixed_size_list<float16, D>>``).
Quarantined rows are skipped (as `ShardDataset` does).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from speechtok.errors import InputError
from speechtok.exports.audio import audio_cell
from speechtok.shards.reader import ShardDataset, row_keys

#: Rows per Arrow record batch (bounds memory: one batch of encoded audio at a time).
BATCH_ROWS = 64
_DATA_FILE = "data-00000-of-00001.arrow"


def _array_column(values: list[Any]) -> pa.Array:
    """(T,) or (T, W) numpy arrays -> ``list<t>`` or ``list<fixed_size_list<t, W>>``."""
    arrays = [np.asarray(v) for v in values]
    first = arrays[0] if arrays else np.zeros(0, np.uint16)
    offsets = np.zeros(len(arrays) + 1, np.int32)
    np.cumsum([a.shape[0] for a in arrays], out=offsets[1:])
    flat = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else first.reshape(-1)
    child: pa.Array = pa.array(flat)
    if first.ndim == 2:
        child = pa.FixedSizeListArray.from_arrays(child, int(first.shape[1]))
    return pa.ListArray.from_arrays(pa.array(offsets), child)


def _batch(rows: list[dict[str, Any]], keys: list[str], array_keys: set[str], where: str) -> pa.RecordBatch:
    cols: dict[str, pa.Array] = {
        "id": pa.array([str(r["id"]) for r in rows], pa.string()),
        "audio": pa.array([audio_cell(r, where) for r in rows],
                          pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "text": pa.array([r.get("text") for r in rows], pa.string()),
        "speaker": pa.array([r.get("speaker") for r in rows], pa.string()),
        "language": pa.array([r.get("language") for r in rows], pa.string()),
        "duration": pa.array([float(r["duration"]) for r in rows], pa.float64()),
        "sampling_rate": pa.array([r.get("sampling_rate") for r in rows], pa.int64()),
    }
    for k in keys:
        vals = [r[k] for r in rows]
        if k in array_keys and all(v is not None for v in vals):
            cols[k] = _array_column(vals)
        else:  # lists of texts/records, or a side column absent from these rows (null)
            cols[k] = pa.array([v.tolist() if isinstance(v, np.ndarray) else v for v in vals])
    return pa.RecordBatch.from_pydict(cols)


def export_hf_audio(out_dir: Path, dest: Path, groups: Sequence[str]) -> int:
    """Writes the dataset described in the module docstring into `dest`; returns rows written."""
    # lazy: datasets only for this export
    import datasets

    ds = ShardDataset(out_dir, ("cuts", *groups), checksum=True)
    metas = {g: ds.meta(g) for g in ("cuts", *groups)}
    keys: list[str] = []
    array_keys: set[str] = set()
    for g in groups:
        for k, col in row_keys(g, metas[g]).items():
            keys.append(k)
            if metas[g].kind not in ("nbest", "align") and col not in ("texts",):
                array_keys.add(k)
    writer: pa.RecordBatchStreamWriter | None = None
    features: Any = None
    n = 0
    where = str(out_dir)
    path = dest / _DATA_FILE
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer, features
        batch = _batch(pending, keys, array_keys, where)
        if writer is None:
            features = datasets.Features.from_arrow_schema(batch.schema)
            features["audio"] = datasets.Audio()
            meta = {"huggingface": json.dumps({"info": {"features": features.to_dict()}})}
            writer = pa.ipc.new_stream(str(path), batch.schema.with_metadata(meta))
        writer.write_batch(batch)
        pending.clear()

    try:
        for row in ds:
            pending.append(row)
            n += 1
            if len(pending) >= BATCH_ROWS:
                flush()
        if writer is None and not pending:
            raise InputError(str(out_dir), "has no rows to export (no committed shards, or all quarantined)")
        if pending:
            flush()
    finally:
        if writer is not None:
            writer.close()
        ds.close()
    provenance = {g: json.loads(m.to_json()) for g, m in metas.items()}
    fingerprint = hashlib.sha256(
        json.dumps({g: m.fingerprint for g, m in metas.items()}, sort_keys=True).encode()).hexdigest()[:16]
    info = datasets.DatasetInfo(description="speechtok export; provenance: " + json.dumps(provenance, sort_keys=True),
                                features=features)
    info_dict = dataclasses.asdict(info)
    (dest / "dataset_info.json").write_text(json.dumps({k: info_dict[k] for k in sorted(info_dict)}, indent=2))
    state: dict[str, Any] = {"_data_files": [{"filename": _DATA_FILE}], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    (dest / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    return n

