"""A fairseq2 `DataPipeline` over a speechtok shard directory, so fairseq2 recipes train on it as is.

    pipe = shard_pipeline(OUT, ("cuts", "units.km100"))              # one row per example
    # -> {"id": str, "text": str, ..., "units.km100": uint16 (T,)}   (ShardDataset rows)
    pipe = shard_pipeline(OUT, ("cuts", "codes.q8"), batching=BatchingConfig(max_tokens=8192),
                          length_group="codes.q8", epoch=3)
    # -> list of rows per batch: speechtok's length bucketing, planned on the shard index

The pipeline is ``read_sequence(row indices | planned batches) -> map(read rows) -> prefetch``:
the index (and `ShardDataset.lengths`, read without touching payloads) decides the order, and each
row is read when fairseq2 asks for it. Payload columns are the `ShardDataset` views of the
memory-mapped Arrow files (zero-copy, read-only numpy arrays; ``torch.from_numpy`` after a copy if
a tensor must be written to). Quarantined rows are skipped as `ShardDataset` skips them. The
pipeline's ``state_dict()`` / ``load_state_dict()`` resume it mid-epoch (fairseq2's own state).

fairseq2's native library needs Intel oneTBB; `import_fairseq2` loads it through
`speechtok.features.fairseq2_lib` when the dynamic linker does not find it on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from speechtok.features.fairseq2_lib import import_fairseq2 as load_fairseq2
from speechtok.shards.reader import ShardDataset
from speechtok.trainers.data import BatchingConfig, plan_batches


def import_fairseq2() -> Any:
    """Imports ``fairseq2.data.data_pipeline`` (preloading oneTBB if needed, see
    `speechtok.features.fairseq2_lib`) and returns it.

    Raises:
        InputError: fairseq2 cannot be imported (names the error and the fix).
    """
    return load_fairseq2("fairseq2.data.data_pipeline")


def shard_pipeline(out_dir: str | os.PathLike[str], groups: Sequence[str] = ("cuts",),
                   columns: Sequence[str] | None = None, *, batching: BatchingConfig | None = None,
                   length_group: str | None = None, epoch: int = 0, prefetch: int = 2) -> Any:
    """A fairseq2 ``DataPipeline`` over the shards of `out_dir` (see the module docstring).

    Args:
        out_dir: a speechtok output directory.
        groups, columns: as `ShardDataset` (rows are its rows).
        batching: None yields rows in index order; a `BatchingConfig` yields lists of rows, the
            batches `plan_batches(lengths(length_group), batching, epoch)` plans.
        length_group: the group whose lengths bucket (default: the last of `groups`).
        epoch: the epoch whose batch plan to follow (shuffling is seeded by it).
        prefetch: examples (rows or batches) prepared ahead.
    """

    dp = import_fairseq2()
    ds = ShardDataset(out_dir, tuple(groups), list(columns) if columns is not None else None)
    if batching is None:
        builder = dp.read_sequence(list(range(len(ds))))  # -> int row index
        builder = builder.map(ds.__getitem__)  # -> {"id": str, <column>: value | numpy view}
    else:
        group = length_group or groups[-1]
        plan = plan_batches(ds.lengths(group), batching, epoch)
        builder = dp.read_sequence([b.tolist() for b in plan])  # -> list[int] of one batch

        def rows(batch: list[int]) -> list[dict[str, Any]]:
            return [ds[i] for i in batch]

        builder = builder.map(rows)  # -> list of rows
    return builder.prefetch(prefetch).and_return()
