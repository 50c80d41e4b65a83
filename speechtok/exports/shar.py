"""lhotse Shar for NeMo's lhotse dataloading (``--to nemo`` writes it to ``DEST/shar``).

Layout (lhotse's `SharWriter`, ``shard_size`` cuts per shard): ``cuts.NNNNNN.jsonl.gz`` (the
cuts, text and speaker in their supervisions), ``recording.NNNNNN.tar`` (each cut's audio as
FLAC, segments cut out by lhotse) and one ``<field>.NNNNNN.tar`` per speechtok field group,
``field = group`` with ``.``/``-`` as ``_`` (``units.km50`` -> ``units_km50``, also
``units_km50_durations``; ``codes.q4`` -> ``codes_q4`` (T, Q) uint16; ``feats.d8`` -> ``feats_d8``
(T, D)), stored as numpy arrays: ``CutSet.from_shar(in_dir=DEST/shar)`` then
``cut.load_custom("units_km50")``. ``DEST/shar_fields.json`` (next to ``shar/``, which lhotse
scans) maps each field to its group and provenance (frame rate, vocabulary size, codebooks).
In NeMo, point ``shar_path`` at ``DEST/shar``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset, row_keys

#: Cuts per Shar shard (lhotse's default is 1000).
SHARD_SIZE = 1000


def field_name(key: str) -> str:
    """The Shar field (a cut custom attribute) of a `ShardDataset` row key."""
    return key.replace(".", "_").replace("-", "_")


def export_shar(out_dir: Path, dest: Path, groups: Sequence[str], *, shard_size: int = SHARD_SIZE) -> int:
    """Writes lhotse Shar (see the module docstring) into `dest`; returns cuts written."""
    # lazy: lhotse (and torch with it) takes seconds to import
    from lhotse.serialization import deserialize_item
    from lhotse.shar import SharWriter

    array_groups = [g for g in groups if g.split(".", 1)[0] in ("units", "codes", "feats", "ctc", "states")]
    ds = ShardDataset(out_dir, ("cuts", *array_groups), checksum=True)
    keys = {k: g for g in array_groups for k in row_keys(g, ds.meta(g))}
    fields = {"recording": "flac", **{field_name(k): "numpy" for k in keys}}
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    with SharWriter(str(dest), fields=fields, shard_size=shard_size) as writer:
        for row in ds:
            if not row.get("cut"):
                raise InputError(f"{out_dir}:{row['id']}", "has no cut JSON with a recording; Shar needs its audio")
            cut = deserialize_item(json.loads(str(row["cut"])))
            for k in keys:
                if row[k] is not None:  # an absent side column (no durations): a Shar placeholder
                    cut = cut.attach_tensor(field_name(k), np.ascontiguousarray(row[k]))
            writer.write(cut)
            n += 1
    info = {field_name(k): {"group": g, "row_key": k, "provenance": json.loads(ds.meta(g).to_json())}
            for k, g in keys.items()}
    (dest.parent / "shar_fields.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return n
