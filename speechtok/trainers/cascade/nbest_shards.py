"""N-best lists in speechtok's Arrow shards: field group ``nbest.<name>``, one row per cut.

Columns (see `speechtok.shards.schema`): ``texts: list<utf8>`` (hypotheses, best
first) and ``scores: list<float32>`` (`Hypothesis.am_score`, the natural-log sum). The shard
layout has no column for token counts or references: `read_nbest_shards` sets ``num_tokens`` to
the word count and ``am_score_norm`` to score / words, and references come from the ``cuts``
group (or `NBestList.reference` kept in the JSONL). The group's provenance (decoder config,
model checksum, fingerprint) is in the schema metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.models.nbest import Hypothesis, NBestList
from speechtok.shards.reader import ShardDataset
from speechtok.shards.schema import GroupMeta
from speechtok.shards.writer import ShardWriter

STAGE = "cascade.nbest"
STAGE_VERSION = "1"


def nbest_meta(name: str, config: dict[str, Any], *, model_checksum: str | None = None,
               upstream_fingerprint: str | None = None) -> Any:
    """The `GroupMeta` of group ``nbest.<name>`` with a fingerprint of config + model + code."""

    blob = json.dumps({"config": config, "model": model_checksum, "stage": STAGE, "version": STAGE_VERSION,
                       "upstream": upstream_fingerprint}, sort_keys=True, default=str)
    return GroupMeta(group=f"nbest.{name}", kind="nbest", stage=STAGE, stage_version=STAGE_VERSION,
                     config=json.loads(json.dumps(config, default=str)),
                     fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:16],
                     upstream_fingerprint=upstream_fingerprint, model_checksum=model_checksum)


def write_nbest_shards(out_dir: Path, lists: Iterable[NBestList], *, name: str, config: dict[str, Any],
                       model_checksum: str | None = None, max_rows: int = 10_000) -> tuple[int, int]:
    """Writes n-best lists as shards of group ``nbest.<name>`` under `out_dir`.

    Returns:
        (num_rows, num_bytes) from the shard writer.
    """

    meta = nbest_meta(name, config, model_checksum=model_checksum)
    with ShardWriter(out_dir, meta, max_rows=max_rows) as writer:
        for nb in lists:
            writer.write({"id": nb.id, "texts": nb.texts(),
                          "scores": np.asarray([h.am_score for h in nb.hyps], dtype=np.float32)})
        result: tuple[int, int] = writer.finalize()
    return result


def read_nbest_shards(out_dir: Path, *, name: str) -> list[NBestList]:
    """Reads group ``nbest.<name>`` back (see the module docstring for what is not stored)."""

    group = f"nbest.{name}"
    ds = ShardDataset(out_dir, groups=(group,))
    out = []
    for row in ds:
        scores = np.asarray(row[f"{group}.scores"], dtype=np.float64)
        words = [max(len(str(t).split()), 1) for t in row[group]]
        hyps = tuple(Hypothesis(text=str(t), rank=r, am_score=float(s), am_score_norm=float(s) / n, num_tokens=n)
                     for r, (t, s, n) in enumerate(zip(row[group], scores, words, strict=True)))
        out.append(NBestList(id=str(row["id"]), source=name, hyps=hyps))
    return out
