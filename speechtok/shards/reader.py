"""Memory-mapped reader over all committed shards of an output directory.

`ShardDataset(out, groups=("cuts", "units.km100"))` maps only the files of the requested
groups (column projection), aligns them row by row (ids are compared when a shard is
opened), and returns rows as dicts::

    ds[i] -> {"id": str, <cuts columns>, "units.km100": np.ndarray[uint16, (T,)],
              "units.km100.durations": np.ndarray[uint16, (T,)] | None,
              "codes.X": np.ndarray[uint16, (T, Q)], "feats.X": np.ndarray[float16, (T, D)],
              "nbest.X": list[str], "nbest.X.scores": np.ndarray[float32, (N,)]}

Payload arrays of uncompressed shards are read-only zero-copy views into the memory map (the
flat child buffer of the list column, cut by the list offsets and reshaped to (T, W) for
fixed-size lists): nothing is copied, and pages are read from disk only when touched.
`lengths(group)` gives frames per row from the list offsets alone, for bucketing.

Quarantined rows: a cut a stage quarantined keeps an empty row in its group (0 frames), and
its reason is in ``OUT/quarantine.d/{group}.{shard:05d}.jsonl``. By default the dataset skips
the rows quarantined in any of the groups it reads (``len``, indexing, iteration and `lengths`
see only the others) and reports them: `num_quarantined`, `quarantined` (id -> "stage: reason").
``include_quarantined=True`` keeps them (empty payloads).

Integrity: a file must have the size recorded in the index, a valid schema and version,
the row count of the index and ids equal to the other opened groups' ids. With
``checksum=True`` (default) its sha256 is also checked against the index the first time a row
of the shard is read (cached per process, keyed by path, size, mtime and inode); pass
``checksum=False`` to skip the hash (structural checks still run). Errors are `InputError`
naming the file.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, safe_shard_file
from speechtok.shards.schema import GroupMeta, payload_columns, primary_column

Row = dict[str, Any]


def row_keys(group: str, meta: GroupMeta) -> dict[str, str]:
    """Row key -> column name of `group` (cuts: plain names; others: group[.column])."""
    if meta.kind == "cuts":
        return {c: c for c in payload_columns(meta)}
    prim = primary_column(meta)
    return {(group if c == prim else f"{group}.{c}"): c for c in payload_columns(meta)}


class ShardDataset:
    """Random access and streaming over the committed shards of ``OUT``.

    Args:
        out_dir: the output directory.
        groups: field groups to read, e.g. ``("cuts", "units.km100")``; only their files open.
        columns: row keys to return (see module docstring); None returns all of the groups'.
        checksum: verify each file's sha256 against the index on first row access.
        partial: when groups have different committed shards (a run in flight), read the
            shards they have in common instead of raising `InputError`.
        max_open_shards: shards kept mapped at once during random access (LRU).
        include_quarantined: keep rows quarantined in one of `groups` (empty payloads); by
            default they are skipped and counted in `num_quarantined`.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        groups: Sequence[str] = ("cuts",),
        columns: Sequence[str] | None = None,
        *,
        checksum: bool = True,
        partial: bool = False,
        max_open_shards: int = 64,
        include_quarantined: bool = False,
    ) -> None:
        if isinstance(groups, str):
            groups = (groups,)
        if not groups:
            raise ConfigError("groups", groups, "must name at least one field group")
        check_at_least(1, max_open_shards=max_open_shards)
        self.out_dir = Path(out_dir)
        self.groups = tuple(dict.fromkeys(groups))
        self.checksum = checksum
        self.max_open_shards = max_open_shards
        self.index = ShardIndex.load(self.out_dir).require_entries()
        known = self.index.groups()
        per_group: dict[str, list[int]] = {}
        for g in self.groups:
            if g not in known:
                raise InputError(str(self.out_dir), f"has no group {g!r}; it has {known}")
            per_group[g] = self.index.committed_shards(g)
            for e in self.index.entries(g):
                if self.index.state(g, e.shard) == "outside":
                    safe_shard_file(self.out_dir, e)  # raises InputError naming the file
                if self.index.state(g, e.shard) == "resized":
                    raise InputError(
                        str(self.out_dir / e.path),
                        f"size {(self.out_dir / e.path).stat().st_size} differs from the index "
                        f"({e.bytes} bytes): truncated or overwritten; run `speechtok verify` "
                        "and rerun the stage",
                    )
        common = sorted(set.intersection(*(set(v) for v in per_group.values())))
        for g, shards in per_group.items():
            missing = sorted(set().union(*(set(v) for v in per_group.values())) - set(shards))
            if missing and not partial:
                raise InputError(
                    str(self.out_dir),
                    f"group {g!r} has no committed shard {missing[:10]} (in flight or missing) "
                    f"that other groups have; finish the run, or pass partial=True",
                )
        self.shards = common
        rows = []
        for s in common:
            counts = {g: self.index.committed(g, s).rows for g in self.groups}  # type: ignore[union-attr]
            if len(set(counts.values())) != 1:
                raise InputError(
                    str(self.out_dir / "shards" / f"{s:05d}.*"),
                    f"groups disagree on the number of rows of shard {s}: {counts}",
                )
            rows.append(counts[self.groups[0]])
        self._starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(rows, out=self._starts[1:])
        self._starts_list: list[int] = self._starts.tolist()
        self._metas: dict[str, GroupMeta] = {}
        self._open: OrderedDict[int, dict[str, ShardFile]] = OrderedDict()
        self._plans: dict[int, list[tuple[str, str, str, ShardFile]]] = {}
        self._keys: dict[str, dict[str, str]] = {g: row_keys(g, self.meta(g)) for g in self.groups}
        all_keys = ["id"] + [k for g in self.groups for k in self._keys[g]]
        if columns is not None:
            unknown = sorted(set(columns) - set(all_keys))
            if unknown:
                raise ConfigError("columns", list(columns), f"has unknown keys {unknown}; "
                                  f"available: {all_keys}")
        self.columns = tuple(all_keys if columns is None else ["id", *[c for c in columns if c != "id"]])
        self.include_quarantined = include_quarantined
        #: id -> "stage: reason" of every quarantined row of the dataset's shards (skipped or not).
        self.quarantined: dict[str, str] = {}
        self._skip: dict[int, frozenset[int]] = {}  # shard -> rows within it that are skipped
        self._rowmap: np.ndarray | None = None  # dataset row -> row over all shards, when skipping
        self._find_quarantined()

    def _find_quarantined(self) -> None:
        reasons: dict[int, dict[str, str]] = {}
        shards = set(self.shards)
        for g in self.groups:
            for p in sorted((self.out_dir / "quarantine.d").glob(f"{g}.*.jsonl")):
                num = p.name[len(g) + 1:-len(".jsonl")]
                if not num.isdigit() or int(num) not in shards:
                    continue
                for line in p.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        q = json.loads(line)
                        reasons.setdefault(int(num), {}).setdefault(
                            str(q["id"]), f"{q.get('stage', g)}: {q.get('reason')}")
        skipped: list[int] = []
        for k, s in enumerate(self.shards):
            bad = reasons.get(s)
            if not bad:
                continue
            f = self._file(s, self.groups[0], payload=False)
            ids = f.all_ids().to_pylist()
            f.close()
            local = [j for j, cid in enumerate(ids) if cid in bad]
            self.quarantined.update({ids[j]: bad[ids[j]] for j in local})
            if not self.include_quarantined:
                self._skip[s] = frozenset(local)
                skipped.extend(self._starts_list[k] + j for j in local)
        if skipped:
            keep = np.ones(int(self._starts[-1]), dtype=bool)
            keep[skipped] = False
            self._rowmap = np.flatnonzero(keep)

    @property
    def num_quarantined(self) -> int:
        """Quarantined rows of the dataset's shards (skipped unless ``include_quarantined``)."""
        return len(self.quarantined)

    # ------------------------------------------------------------------ metadata

    def __len__(self) -> int:
        return int(self._starts[-1]) if self._rowmap is None else len(self._rowmap)

    def meta(self, group: str) -> GroupMeta:
        """Provenance of `group` (from the schema metadata of its first committed shard)."""
        if group not in self._metas:
            shards = self.index.committed_shards(group)
            if not shards:
                raise InputError(str(self.out_dir), f"group {group!r} has no committed shard")
            f = self._file(shards[0], group, payload=False)
            self._metas[group] = f.meta
            f.close()
        return self._metas[group]

    def lengths(self, group: str) -> np.ndarray:
        """int64 (len(self),): frames per row of `group` from list offsets (payload unread).

        For ``cuts`` it is the number of audio samples, ``round(duration * sampling_rate)``.
        """
        if group not in self.groups:
            raise ConfigError("group", group, f"must be one of the dataset's groups {self.groups}")
        meta = self.meta(group)
        parts = []
        for s in self.shards:
            f = self._file(s, group, payload=False)
            if meta.kind == "cuts":
                tab = f.table().select(["duration", "sampling_rate"])
                dur = tab.column("duration").to_numpy()
                sr = tab.column("sampling_rate").fill_null(0).to_numpy()
                parts.append(np.rint(dur * sr).astype(np.int64))
            else:
                parts.append(f.lengths(str(primary_column(meta))))
            f.close()
        out = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return out if self._rowmap is None else out[self._rowmap]

    # ------------------------------------------------------------------ access

    def _file(self, shard: int, group: str, *, payload: bool) -> ShardFile:
        entry = self.index.committed(group, shard)
        path = self.out_dir / "shards" / f"{shard:05d}.{group}.arrow"
        if entry is None:
            raise InputError(str(path), "is not committed (in flight, missing or resized)")
        return ShardFile(safe_shard_file(self.out_dir, entry), entry, group=group,
                         checksum=payload and self.checksum)

    def _shard(self, shard: int) -> dict[str, ShardFile]:
        files = self._open.get(shard)
        if files is not None:
            self._open.move_to_end(shard)
            return files
        files = {g: self._file(shard, g, payload=True) for g in self.groups}
        ref_group = self.groups[0]
        ref = files[ref_group].all_ids()
        for g, f in files.items():
            if g != ref_group and not f.all_ids().equals(ref):
                raise InputError(f.item, f"ids are not aligned row by row with {files[ref_group].item}")
        self._open[shard] = files
        while len(self._open) > self.max_open_shards:
            _, old = self._open.popitem(last=False)
            self._plans.pop(id(old), None)
            for f in old.values():
                f.close()
        return files

    def open_shard(self, shard: int) -> dict[str, ShardFile]:
        """The mapped, checked files of shard number `shard`, per group (kept open, LRU)."""
        if shard not in self.shards:
            raise ConfigError("shard", shard, f"must be one of the dataset's shards {self.shards[:20]}")
        return self._shard(shard)

    def _plan(self, files: dict[str, ShardFile]) -> list[tuple[str, str, str, ShardFile]]:
        """(key, column, how, file) for every returned key; how is "list" or "scalar"."""
        plan = []
        for g in self.groups:
            f = files[g]
            for key, col in self._keys[g].items():
                if key not in self.columns:
                    continue
                typ = f.schema.field(col).type
                listy = (f.meta.kind != "cuts" and col not in ("texts", "alignment")
                         and pa.types.is_list(typ))
                plan.append((key, col, "list" if listy else "scalar", f))
        return plan

    def _row(self, files: dict[str, ShardFile], local: int) -> Row:
        # Each group file has its own record-batch boundaries (batches roll by payload bytes,
        # so a feature file has more batches than its cuts file): locate the row per file.
        first = files[self.groups[0]]
        b, j = first.locate(local)
        out: Row = {"id": first.id_list(b)[j]}
        plan = self._plans.get(id(files))
        if plan is None:
            plan = self._plans[id(files)] = self._plan(files)
        where: dict[int, tuple[int, int]] = {id(first): (b, j)}
        for key, col, how, f in plan:
            loc = where.get(id(f))
            if loc is None:
                loc = where[id(f)] = f.locate(local)
            fb, fj = loc
            out[key] = f.list_column(fb, col).row(fj) if how == "list" else f.scalar(fb, fj, col)
        return out

    def locate(self, i: int) -> tuple[int, int]:
        """(shard number, row within the shard) of dataset row `i`."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for a dataset of {n} rows")
        i %= n
        if self._rowmap is not None:
            i = int(self._rowmap[i])
        k = bisect.bisect_right(self._starts_list, i) - 1
        return self.shards[k], i - self._starts_list[k]

    def __getitem__(self, i: int) -> Row:
        shard, local = self.locate(int(i))
        return self._row(self._shard(shard), local)

    def __iter__(self) -> Iterator[Row]:
        """Streams every row in order, one shard mapped at a time."""
        for s in self.shards:
            cached = s in self._open
            files = self._shard(s)
            n = files[self.groups[0]].num_rows
            skip = self._skip.get(s, frozenset())
            for j in range(n):
                if j not in skip:
                    yield self._row(files, j)
            if not cached:
                done = self._open.pop(s)
                self._plans.pop(id(done), None)
                for f in done.values():
                    f.close()

    def close(self) -> None:
        """Unmaps every open shard."""
        self._plans.clear()
        while self._open:
            _, files = self._open.popitem()
            for f in files.values():
                f.close()

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with "spawn" receive a copy: drop the memory maps.
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        state["_plans"] = {}
        return state
