"""Dummy shard outputs for tests, examples and benchmarks (after lhotse's ``testing/dummies``).

`write_dummy_output` builds a small, deterministic output directory with ``cuts``,
``units.km50`` (with dedup durations), ``codes.q4`` and ``feats.d8`` groups, so that readers,
exports and trainers can be tested without running any model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.shards.schema import GroupMeta
from speechtok.shards.writer import commit_group_shard

UNITS = GroupMeta(group="units.km50", kind="units", stage="kmeans", stage_version="1",
                  config={"k": 50, "dedup": True}, fingerprint="units-fp-1",
                  upstream_fingerprint="feats-fp-1", frame_rate=50.0, vocab_size=50,
                  model_checksum="0" * 64)
CODES = GroupMeta(group="codes.q4", kind="codes", stage="codec", stage_version="1",
                  config={"bandwidth": 1.5}, fingerprint="codes-fp-1", frame_rate=75.0,
                  vocab_size=1024, num_codebooks=4)
FEATS = GroupMeta(group="feats.d8", kind="feats", stage="fbank", stage_version="1",
                  config={"num_mel_bins": 8}, fingerprint="feats-fp-1", frame_rate=100.0,
                  dim=8, dtype="float16")
CUTS = GroupMeta(group="cuts", kind="cuts", stage="ingest", stage_version="1",
                 config={"source": "dummy"}, fingerprint="cuts-fp-1")


def dummy_rows(num_cuts: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Rows per group for `num_cuts` cuts of 0.2-1.0 s (deterministic in `seed`)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict[str, Any]]] = {g: [] for g in ("cuts", UNITS.group, CODES.group,
                                                            FEATS.group)}
    for i in range(num_cuts):
        cid = f"cut-{i:04d}"
        dur = round(0.2 + 0.8 * float(rng.random()), 3)
        out["cuts"].append({
            "id": cid, "recording_id": f"rec-{i:04d}", "start": 0.0, "duration": dur,
            "sampling_rate": 16000, "text": f"utterance number {i}", "speaker": f"spk{i % 3}",
            "language": "en",
            "alignment": [{"word": "utterance", "start": 0.0, "duration": dur / 2}],
        })
        t_units = max(1, int(dur * 50) // 2)
        out[UNITS.group].append({
            "id": cid, "units": rng.integers(0, 50, t_units, dtype=np.int64).astype(np.uint16),
            "durations": rng.integers(1, 4, t_units).astype(np.uint16),
        })
        out[CODES.group].append({"id": cid, "codes": rng.integers(0, 1024, (int(dur * 75), 4))})
        out[FEATS.group].append({"id": cid, "feats": rng.standard_normal((int(dur * 100), 8))
                                 .astype(np.float16)})
    return out


def write_dummy_output(
    out_dir: str | os.PathLike[str],
    *,
    num_cuts: int = 10,
    shard_size: int = 4,
    seed: int = 0,
    compression: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Writes a complete dummy output to `out_dir`; returns the rows written per group."""
    rows = dummy_rows(num_cuts, seed)
    metas = {"cuts": CUTS, UNITS.group: UNITS, CODES.group: CODES, FEATS.group: FEATS}
    for shard, lo in enumerate(range(0, max(num_cuts, 1), shard_size)):
        for group, meta in metas.items():
            commit_group_shard(Path(out_dir), shard, meta, rows[group][lo : lo + shard_size],
                               compression=compression)
    return rows
