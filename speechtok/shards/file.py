"""Opening and validating one shard file: memory map, schema/version/row checks, checksums.

Every failure is an `InputError` naming the file and what is wrong (truncated, checksum
mismatch, not an Arrow file, schema mismatch, wrong row count, bad list offsets), never a
silent wrong value and never a crash: every record batch is fully validated (each string and
list offset bounded by its data) before anything reads through it, and list offsets are checked
again before numpy views are cut.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from speechtok.errors import InputError
from speechtok.features.checksum import file_sha256
from speechtok.shards.index import ShardEntry
from speechtok.shards.schema import META_KEY, GroupMeta, schema_for

#: (realpath, size, mtime_ns, inode) -> sha256 already verified in this process.
_VERIFIED: dict[tuple[str, int, int, int], str] = {}


def verify_checksum(path: Path, entry: ShardEntry, *, cached: bool = True) -> None:
    """Raises `InputError` when `path`'s sha256 differs from the index; cached per process."""
    st = path.stat()
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if cached and _VERIFIED.get(key) == entry.sha256:
        return
    digest = file_sha256(path)
    if digest != entry.sha256:
        raise InputError(
            str(path),
            f"sha256 {digest} differs from the index ({entry.sha256}): the file is corrupt; "
            f"delete it and its index entry and rerun the stage",
        )
    _VERIFIED[key] = digest


@dataclass
class ListColumn:
    """A list column of one record batch as numpy: row j is ``values[offsets[j]:offsets[j+1]]``.

    `values` is the flat child buffer (a zero-copy view for uncompressed files), shape
    (N,) for ``list<scalar>`` or (N, W) for ``list<fixed_size_list<_, W>>``; `valid` is None
    when no row is null.
    """

    offsets: np.ndarray
    values: np.ndarray
    valid: np.ndarray | None

    def row(self, j: int) -> np.ndarray | None:
        if self.valid is not None and not self.valid[j]:
            return None
        return self.values[self.offsets[j] : self.offsets[j + 1]]


def _list_column(arr: pa.Array, item: str) -> ListColumn:
    """Decodes a ListArray into checked numpy offsets and flat values (no copy)."""
    try:
        off = arr.offsets.to_numpy(zero_copy_only=True)
        child = arr.values
        width = None
        if pa.types.is_fixed_size_list(child.type):
            width = child.type.list_size
            start, n = child.offset, len(child)
            flat = child.values
            vals = flat.to_numpy(zero_copy_only=True)[start * width : (start + n) * width]
            if child.null_count or flat.null_count:
                raise InputError(item, "null frames in a payload column")
            vals = vals.reshape(-1, width) if width else vals.reshape(n, 0)
        elif pa.types.is_string(child.type):
            vals = np.asarray(child.to_pylist(), dtype=object)
        else:
            if child.null_count:
                raise InputError(item, "null values in a payload column")
            vals = child.to_numpy(zero_copy_only=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InputError(item, f"unreadable list column ({exc})") from exc
    n_vals = len(vals)
    if len(off) != len(arr) + 1 or (len(off) and (off[0] < 0 or off[-1] > n_vals)) or (
        len(off) > 1 and bool(np.any(np.diff(off) < 0))
    ):
        raise InputError(item, "list offsets out of range or decreasing (corrupt file)")
    valid = None
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if off.dtype != np.int64:
        off = off.astype(np.int64)
    return ListColumn(offsets=off, values=vals, valid=valid)


def _bad_column(batch: pa.RecordBatch | None) -> str:
    """`` column 'name'`` of the first column of `batch` failing full validation, or ``""``."""
    if batch is None:
        return ""
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        try:
            col.validate(full=True)
        except (pa.ArrowInvalid, pa.ArrowException):
            return f" column {name!r}"
    return ""


class ShardFile:
    """One memory-mapped, validated shard file of one group.

    Attributes:
        path: the file. meta: its `GroupMeta`. entry: its index entry.
        num_rows: rows. batch_starts: int64 (B+1,) first row of each record batch.
    """

    def __init__(self, path: Path, entry: ShardEntry, *, group: str, checksum: bool) -> None:
        self.path, self.entry, self.item = path, entry, str(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(self.item, f"missing ({exc}); the shard is in flight or was deleted") from exc
        if size != entry.bytes:
            raise InputError(
                self.item, f"size {size} differs from the index ({entry.bytes} bytes): truncated "
                "or rewritten; run `speechtok verify` and rerun the stage")
        if checksum:
            verify_checksum(path, entry)
        try:
            self._mmap = pa.memory_map(str(path), "r")
            self.reader = pa.ipc.open_file(self._mmap)
            schema = self.reader.schema
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise InputError(self.item, f"not a readable Arrow IPC file ({exc})") from exc
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise InputError(self.item, "no speechtok schema metadata (not a speechtok shard)")
        self.meta = GroupMeta.from_json(raw, source=self.item)
        if self.meta.group != group:
            raise InputError(self.item, f"holds group {self.meta.group!r}, expected {group!r}")
        if self.meta.fingerprint != entry.fingerprint:
            raise InputError(self.item, f"fingerprint {self.meta.fingerprint} differs from the "
                             f"index ({entry.fingerprint})")
        expected = schema_for(self.meta)
        if not schema.equals(expected, check_metadata=False):
            raise InputError(self.item, f"schema mismatch: file has {schema.remove_metadata()}, "
                             f"group {group!r} needs {expected.remove_metadata()}")
        self.schema = expected
        self._batches: dict[int, pa.RecordBatch] = {}
        counts = [self.batch(b).num_rows for b in range(self.reader.num_record_batches)]
        self.batch_starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.batch_starts[1:])
        self.num_rows = int(self.batch_starts[-1])
        self._starts_list: list[int] = self.batch_starts.tolist()
        if self.num_rows != entry.rows:
            raise InputError(self.item, f"has {self.num_rows} rows but the index says {entry.rows}")
        self._lists: dict[tuple[int, str], ListColumn] = {}
        self._ids: dict[int, pa.Array] = {}
        self._id_lists: dict[int, list[str]] = {}

    def batch(self, b: int) -> pa.RecordBatch:
        """Record batch `b`, fully validated (offsets bounded) and cached; `InputError` if corrupt."""
        batch = self._batches.get(b)
        if batch is None:
            try:
                batch = self.reader.get_batch(b)
                # Full validation: every offset of every string, list and nested column is
                # checked against its data length before anything reads through it. The cheap
                # check only looks at buffer sizes and the first/last offsets, so a corrupt
                # middle offset (checksums off) made `to_pylist` or `equals` read past the
                # memory map (SIGBUS) or abort in C++. Payload values (floats, uint16) are not
                # touched, so the pages of a feature column still load only when read.
                batch.validate(full=True)
            except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as exc:
                raise InputError(self.item, f"record batch {b}{_bad_column(batch)} is corrupt "
                                 f"({exc})") from exc
            self._batches[b] = batch
        return batch

    def table(self) -> pa.Table:
        """The whole file as a table of its validated record batches (zero-copy)."""
        return pa.Table.from_batches([self.batch(b) for b in range(len(self.batch_starts) - 1)],
                                     schema=self.reader.schema)

    def locate(self, row: int) -> tuple[int, int]:
        """(batch, row within batch) of file row `row`."""
        starts = self._starts_list
        b = bisect.bisect_right(starts, row) - 1
        return b, row - starts[b]

    def list_column(self, b: int, name: str) -> ListColumn:
        """The checked numpy form of list column `name` in batch `b` (cached)."""
        key = (b, name)
        col = self._lists.get(key)
        if col is None:
            col = _list_column(self.batch(b).column(name), f"{self.item} column {name!r}")
            self._lists[key] = col
        return col

    def ids(self, b: int) -> pa.Array:
        """The ``id`` column of batch `b`."""
        if b not in self._ids:
            ids = self.batch(b).column("id")
            if ids.null_count:
                raise InputError(self.item, "null ids")
            self._ids[b] = ids
        return self._ids[b]

    def id_list(self, b: int) -> list[str]:
        """The ids of batch `b` as Python strings (cached)."""
        ids = self._id_lists.get(b)
        if ids is None:
            ids = self._id_lists[b] = self.ids(b).to_pylist()
        return ids

    def all_ids(self) -> pa.ChunkedArray:
        """Every id of the file in order."""
        return pa.chunked_array([self.ids(b) for b in range(len(self.batch_starts) - 1)],
                                type=pa.utf8())

    def scalar(self, b: int, j: int, name: str) -> object:
        """A Python value of a non-list column (cuts metadata)."""
        try:
            return self.batch(b).column(name)[j].as_py()
        except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
            raise InputError(self.item, f"column {name!r} row {j} is corrupt ({exc})") from exc

    def lengths(self, name: str) -> np.ndarray:
        """int64 (num_rows,) list lengths of column `name` from its offsets only."""
        parts = []
        for b in range(len(self.batch_starts) - 1):
            try:
                off = self.batch(b).column(name).offsets.to_numpy(zero_copy_only=True)
            except (pa.ArrowInvalid, ValueError) as exc:
                raise InputError(self.item, f"column {name!r} offsets unreadable ({exc})") from exc
            d = np.diff(off.astype(np.int64))
            if len(d) and d.min() < 0:
                raise InputError(self.item, f"column {name!r} has decreasing offsets (corrupt)")
            parts.append(d)
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def close(self) -> None:
        self._lists.clear()
        self._ids.clear()
        self._id_lists.clear()
        self._batches.clear()
        self.reader = None  # type: ignore[assignment]
        self._mmap.close()
