"""Rows of a local Hugging Face dataset, read in place: Parquet files or `save_to_disk` Arrow files.

A Hugging Face dataset on disk is either a ``save_to_disk`` directory (``state.json`` listing
``data-XXXXX-of-YYYYY.arrow`` files in Arrow IPC *stream* format; a ``DatasetDict`` adds one
such directory per split and ``dataset_dict.json``) or a folder of Parquet files (the hub's
layout, ``data/train-00000-of-00004.parquet``). Both are memory-mapped here: a batch of rows
is a view of the file, and an audio column's ``bytes`` are copied out one row at a time.

This module is deliberately light (pyarrow only) because ingest's in-place audio reference is
a lhotse ``command`` source that runs it once per load::

    python -m speechtok.hf_rows FILE ROW COLUMN   # writes the row's audio bytes to stdout
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speechtok.errors import InputError

#: Rows per record batch read from a Parquet file (bounds memory with large audio bytes).
BATCH_ROWS = 64


def dataset_files(root: str | Path) -> list[Path]:
    """The data files of the dataset at `root`, in dataset order.

    Args:
        root: a ``save_to_disk`` directory (``Dataset`` or ``DatasetDict``), a folder holding
            ``*.parquet`` files (searched recursively, sorted by path), or one such file.

    Raises:
        InputError: `root` holds none of these.
    """
    root = Path(root)
    if root.is_file() and root.suffix in (".parquet", ".arrow"):
        return [root]
    if (root / "dataset_dict.json").is_file():
        splits = json.loads((root / "dataset_dict.json").read_text()).get("splits", [])
        return [f for s in splits for f in dataset_files(root / s)]
    if (root / "state.json").is_file():
        state = json.loads((root / "state.json").read_text())
        return [root / f["filename"] for f in state.get("_data_files", [])]
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        raise InputError(
            str(root),
            "is not a Hugging Face dataset: expected a save_to_disk directory (state.json) or "
            "a folder of .parquet files",
        )
    return files


def _open_arrow(src: pa.NativeFile) -> Iterator[pa.RecordBatch]:
    try:
        reader = pa.ipc.open_stream(src)
    except pa.ArrowInvalid:
        src.seek(0)
        file_reader = pa.ipc.open_file(src)
        for i in range(file_reader.num_record_batches):
            yield file_reader.get_batch(i)
        return
    yield from reader


def file_schema(path: Path) -> pa.Schema:
    """The Arrow schema of one data file (without reading its rows)."""
    if path.suffix == ".parquet":
        return pq.ParquetFile(path, memory_map=True).schema_arrow
    with pa.memory_map(str(path)) as src:
        for batch in _open_arrow(src):
            return batch.schema
        return pa.ipc.open_stream(src).schema


def iter_batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of one data file, memory-mapped, in row order (`columns` only, if given)."""
    if path.suffix == ".parquet":
        pf = pq.ParquetFile(path, memory_map=True)
        yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=columns)
        return
    with pa.memory_map(str(path)) as src:
        for batch in _open_arrow(src):
            yield batch.select(columns) if columns is not None else batch


def read_cell(path: str | Path, row: int, column: str) -> object:
    """The value of `column` at `row` (0-based, within the file) of one data file."""
    path = Path(path)
    if row < 0:
        raise InputError(f"{path}:{row}", "row must be >= 0")
    if path.suffix == ".parquet":
        pf = pq.ParquetFile(path, memory_map=True)
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row < n:
                return pf.read_row_group(g, columns=[column]).column(0)[row].as_py()
            row -= n
    else:
        for batch in iter_batches(path, [column]):
            if row < batch.num_rows:
                return batch.column(0)[row].as_py()
            row -= batch.num_rows
    raise InputError(f"{path}", f"has no row {row} (past its end)")


def audio_bytes(value: object) -> bytes | None:
    """The encoded audio bytes of an ``Audio`` cell (``{"bytes", "path"}``), else None."""
    if isinstance(value, dict):
        data = value.get("bytes")
        return bytes(data) if data else None
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m speechtok.hf_rows FILE ROW COLUMN``: the cell's audio bytes to stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m speechtok.hf_rows FILE ROW COLUMN", file=sys.stderr)
        return 2
    value = read_cell(args[0], int(args[1]), args[2])
    data = audio_bytes(value)
    if data is None:
        print(f"speechtok.hf_rows: {args[0]} row {args[1]} column {args[2]} holds no audio bytes",
              file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
