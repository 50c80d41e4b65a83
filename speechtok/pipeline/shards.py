"""Arrow shard writer: one IPC file per field group per shard, committed atomically.

Layout of an output directory ``OUT`` (after lhotse Shar: a new tokenizer adds files, and a
trainer maps only the groups it reads)::

    OUT/index.json                         merged index (see `shard_index`)
    OUT/index.d/{group}.{shard:05d}.json   one entry per committed file (source of truth)
    OUT/shards/{shard:05d}.cuts.arrow      cut metadata, one row per cut, manifest order
    OUT/shards/{shard:05d}.{group}.arrow   one file per field group, aligned row by row

Format: the Arrow IPC *file* format (random access through its footer), typed columns and
provenance in the schema metadata (see `shard_schema`). Record batches hold at most
`BATCH_ROWS` rows / `BATCH_BYTES` payload bytes (a row of `BIG_ROW` bytes or more is a batch
of its own, written from its numpy buffers without a copy), so memory while writing stays
bounded.

Compression. Buffers are **uncompressed by default**: an uncompressed IPC file can be
memory-mapped and every row of units/codes/features is a zero-copy numpy view into the page
cache, which is what random-access training readers need. A zstd-compressed IPC buffer must be
decompressed into fresh memory before it can be read, so opening a batch costs a full
decompression of that batch (no zero-copy, no lazy paging). ``compression="zstd"`` is offered
per group for archival/transfer (the reader handles both transparently; exports keep working).
Measured on this machine (bench/bench_shards.py, 1 thread, CPU time): zstd saves 27% of the
bytes of random token ids and 8% of float16 features, and makes random reads 1.2x (tokens)
to 3-5x (features) slower; uncompressed float16 rows read at ~5.5 GB/s as mapped views.

Commit protocol of one shard file (`commit_group_shard`, also used by `ShardWriter`):
write ``{file}.tmp.{pid}`` while hashing it (sha256) -> fsync -> record the entry
(status ``committed``, sha256, rows, bytes, fingerprint) in ``index.d`` and ``index.json``
atomically -> rename the tmp file to its final name -> fsync the directory. A crash leaves
either no entry (the tmp file is ignored) or an entry whose file is missing (reported as in
flight, redone by a rerun). Identical input gives byte-identical files: the schema metadata
carries no timestamps and JSON is written with sorted keys.

A group holds one fingerprint per output directory: committing a shard with a different
fingerprint raises `InputError` (use a new output directory, or delete the group with
`delete_group` / the runner's ``--force``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from speechtok.errors import ConfigError, InputError
from speechtok.pipeline.shard_index import (
    ShardEntry,
    ShardIndex,
    group_fingerprint,
    record_entry,
    remove_entries,
    shard_path,
)
from speechtok.pipeline.shard_reader import ShardDataset
from speechtok.pipeline.shard_schema import (
    SCHEMA_VERSION,
    GroupMeta,
    build_batch,
    row_nbytes,
    schema_for,
)

__all__ = [
    "SCHEMA_VERSION",
    "GroupMeta",
    "ShardDataset",
    "ShardEntry",
    "ShardIndex",
    "ShardWriter",
    "commit_group_shard",
    "delete_group",
    "schema_for",
]

#: Rows per record batch inside a shard file (bounded memory while writing and reading).
BATCH_ROWS = 1024
#: Payload bytes per record batch. Kept under glibc's 32 MiB mmap threshold so the batch
#: buffers are reused from the heap instead of page-faulted in afresh (measured: 8 MiB batches
#: write 461 MB of float16 features in 0.86 s CPU, 64 MiB batches in 1.87 s).
BATCH_BYTES = 8 << 20
#: A row with at least this many payload bytes is a record batch of its own, whose buffers
#: are written straight from the row's numpy arrays (no concatenation copy).
BIG_ROW = 256 << 10
COMPRESSIONS = (None, "zstd")


class _HashingSink:
    """A binary file that hashes what is written (pyarrow writes through `pa.PythonFile`)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        mv = memoryview(data)
        self.sha.update(mv)
        self.size += mv.nbytes
        return self._f.write(mv)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._f.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self.closed = True


def _check_fingerprint(out: Path, meta: GroupMeta) -> None:
    have = group_fingerprint(out, meta.group)
    if have is not None and have != meta.fingerprint:
        raise InputError(
            str(out),
            f"group {meta.group!r} was written with fingerprint {have} but this run has "
            f"{meta.fingerprint} (config, code or upstream changed); use a new output "
            f"directory, or rerun with --force / delete_group(out, {meta.group!r}) to replace it",
        )


class _ShardFile:
    """Writes one shard file of one group to a tmp name, then commits it."""

    def __init__(self, out: Path, shard: int, meta: GroupMeta, schema: pa.Schema,
                 compression: str | None) -> None:
        self.out, self.shard, self.meta = out, shard, meta
        self.final = shard_path(out, shard, meta.group)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(f"{self.final.name}.tmp.{os.getpid()}")
        self.compression = compression
        self.sink = _HashingSink(self.tmp)
        opts = pa.ipc.IpcWriteOptions(compression=compression, use_threads=False)
        self.writer = pa.ipc.new_file(pa.PythonFile(self.sink, mode="w"), schema, options=opts)
        self.rows = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def abort(self) -> None:
        try:
            self.writer.close()
        except (pa.ArrowException, OSError, ValueError):
            pass
        self.sink.close()
        self.tmp.unlink(missing_ok=True)

    def commit(self) -> ShardEntry:
        self.writer.close()
        self.sink.close()
        entry = ShardEntry(
            group=self.meta.group,
            shard=self.shard,
            path=str(self.final.relative_to(self.out)),
            sha256=self.sink.sha.hexdigest(),
            rows=self.rows,
            bytes=self.sink.size,
            fingerprint=self.meta.fingerprint,
            compression=self.compression,
        )
        record_entry(self.out, entry)
        _publish(self.tmp, self.final)
        return entry


class _Batcher:
    """Groups rows into record batches (`BATCH_ROWS` rows / `BATCH_BYTES` bytes; a row of
    `BIG_ROW` bytes or more alone) and hands each batch to `emit`. Deterministic."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit
        self.buf: list[dict[str, Any]] = []
        self.nbytes = 0
        self.batches = 0

    def add(self, row: dict[str, Any], nbytes: int) -> None:
        if nbytes >= BIG_ROW:
            self.flush()
            self._emit([row])
            return
        self.buf.append(row)
        self.nbytes += nbytes
        if len(self.buf) >= BATCH_ROWS or self.nbytes >= BATCH_BYTES:
            self.flush()

    def _emit(self, rows: list[dict[str, Any]]) -> None:
        self.emit(rows)
        self.batches += 1

    def flush(self, *, empty_ok: bool = False) -> None:
        """Emits the buffered rows; with `empty_ok`, an empty batch when none was emitted."""
        if self.buf or (empty_ok and self.batches == 0):
            self._emit(self.buf)
        self.buf, self.nbytes = [], 0


def _publish(tmp: Path, final: Path) -> None:
    """Atomic rename of a committed shard file to its final name, then fsync the directory."""
    os.replace(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_compression(compression: str | None) -> None:
    if compression not in COMPRESSIONS:
        raise ConfigError("compression", compression, f"must be one of {COMPRESSIONS}")


def commit_group_shard(
    out_dir: str | os.PathLike[str],
    shard: int,
    meta: GroupMeta,
    rows: list[dict[str, Any]],
    *,
    compression: str | None = None,
) -> ShardEntry:
    """Writes and commits shard `shard` of `meta.group` from `rows`.

    Args:
        out_dir: the output directory ``OUT``.
        shard: shard number (>= 0); the file is ``OUT/shards/{shard:05d}.{group}.arrow``.
        meta: provenance; its fingerprint must match what ``OUT`` already holds for the group.
        rows: ``{"id": str, <columns>}`` dicts in cut order; columns per kind:
            units ``units`` uint (T,) [+ ``durations`` (T,)], codes ``codes`` uint (T, Q),
            feats/ctc/states ``feats`` float (T, D), nbest ``texts`` list[str] + ``scores``,
            cuts ``start``, ``duration`` (+ optional metadata, see `shard_schema`).
        compression: None (default, zero-copy reads) or ``"zstd"``.

    Returns:
        The committed `ShardEntry`. Raises `InputError` on bad rows or a fingerprint clash.
    """
    if shard < 0:
        raise ConfigError("shard", shard, "must be >= 0")
    _check_compression(compression)
    out = Path(out_dir)
    schema = schema_for(meta)
    _check_fingerprint(out, meta)
    f = _ShardFile(out, shard, meta, schema, compression)
    try:
        batcher = _Batcher(lambda batch: f.write_batch(
            build_batch(meta, schema, batch, item=str(f.final))))
        for row in rows:
            batcher.add(row, row_nbytes(row))
        batcher.flush(empty_ok=True)
        return f.commit()
    except BaseException:
        f.abort()
        raise


def delete_group(out_dir: str | os.PathLike[str], group: str) -> int:
    """Removes every shard file and index entry of `group` from `out_dir`; returns the count."""
    return remove_entries(out_dir, group)


class ShardWriter:
    """Context manager writing rows of one group, rolling to a new shard by rows or bytes.

    Rows are buffered into record batches (`BATCH_ROWS` / `BATCH_BYTES` / `BIG_ROW`, the same
    batching as `commit_group_shard`, so both give identical bytes) that go straight to the
    current shard's tmp file, so memory stays bounded however many rows are written. A
    shard is committed when it reaches `max_rows` rows or `max_bytes` payload bytes, and at
    `finalize`. An exception inside the ``with`` block aborts the shard in flight (its tmp
    file is removed; committed shards stay).

    Groups that must align with ``cuts`` row by row should roll by `max_rows` only (or use
    `commit_group_shard` with the cuts' shard boundaries): rolling by bytes depends on the
    payload size, which differs between groups.

    Example::

        with ShardWriter(out, meta, max_rows=1000) as w:
            for row in rows:
                w.write(row)
        num_rows, num_bytes = w.finalize()
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        meta: GroupMeta,
        *,
        max_rows: int = 10_000,
        max_bytes: int = 1 << 30,
        start_shard: int = 0,
        compression: str | None = None,
    ) -> None:
        if max_rows < 1:
            raise ConfigError("max_rows", max_rows, "must be >= 1")
        if max_bytes < 1:
            raise ConfigError("max_bytes", max_bytes, "must be >= 1")
        if start_shard < 0:
            raise ConfigError("start_shard", start_shard, "must be >= 0")
        _check_compression(compression)
        self.out = Path(out_dir)
        self.meta = meta
        self.schema = schema_for(meta)
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.compression = compression
        self.next_shard = start_shard
        self.entries: list[ShardEntry] = []
        self._file: _ShardFile | None = None
        self._batcher = _Batcher(self._emit)
        self._shard_rows = 0
        self._shard_bytes = 0
        self._finalized = False
        _check_fingerprint(self.out, meta)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finalized:
            self.finalize()

    def write(self, row: dict[str, Any]) -> None:
        """Buffers one row ``{"id": str, <columns>}`` (see `commit_group_shard`)."""
        if self._finalized:
            raise InputError(str(self.out), "ShardWriter.write() after finalize()")
        n = row_nbytes(row)
        self._shard_rows += 1
        self._shard_bytes += n
        self._batcher.add(row, n)
        if self._shard_rows >= self.max_rows or self._shard_bytes >= self.max_bytes:
            self._commit()

    def _emit(self, rows: list[dict[str, Any]]) -> None:
        if self._file is None:
            self._file = _ShardFile(self.out, self.next_shard, self.meta, self.schema,
                                    self.compression)
        self._file.write_batch(build_batch(self.meta, self.schema, rows, item=str(self._file.final)))

    def _commit(self) -> None:
        self._batcher.flush()
        assert self._file is not None  # internal invariant: a shard has >= 1 row
        self.entries.append(self._file.commit())
        self._file = None
        self._batcher = _Batcher(self._emit)
        self.next_shard += 1
        self._shard_rows = self._shard_bytes = 0

    def abort(self) -> None:
        """Drops the shard in flight (tmp file removed); committed shards stay."""
        if self._file is not None:
            self._file.abort()
            self._file = None
        self._batcher = _Batcher(self._emit)
        self._finalized = True

    def finalize(self) -> tuple[int, int]:
        """Commits the last shard; returns (num_rows, num_bytes) over all committed shards."""
        if not self._finalized:
            try:
                if self._shard_rows:
                    self._commit()
            except BaseException:
                self.abort()
                raise
            self._finalized = True
        return sum(e.rows for e in self.entries), sum(e.bytes for e in self.entries)
