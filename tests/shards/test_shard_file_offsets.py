"""A corrupt string offset inside a shard is an `InputError`, never a read past the memory map.

Arrow's cheap validation checks buffer sizes and the first/last offsets only: a shard whose
*middle* string offset points past the data (checksums off, or the index rewritten to match)
used to abort the process in C++ (std::length_error: the next row's length is negative) or kill
it with SIGBUS (an offset past the mapped file). `ShardFile` now fully
validates each record batch before reading through it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from speechtok.features.checksum import file_sha256
from speechtok.shards.index import entry_path
from speechtok.shards.testing import write_dummy_output


def _corrupt_offset(out: Path, group: str, column: str, slot: int, value: int) -> Path:
    """Rewrites `column`'s offset `slot` in shard 0 of `group` to `value`; index made to match."""
    p = out / "shards" / f"00000.{group}.arrow"
    reader = pa.ipc.open_file(pa.BufferReader(p.read_bytes()))  # not mapped: p is rewritten below
    schema, batch = reader.schema, reader.get_batch(0)
    cols = []
    for name, arr in zip(batch.schema.names, batch.columns, strict=True):
        if name == column:
            validity, offsets, data = arr.buffers()
            off = np.frombuffer(offsets, dtype=np.int32).copy()
            off[slot] = value
            arr = pa.Array.from_buffers(arr.type, len(arr), [validity, pa.py_buffer(off.tobytes()), data])
        cols.append(arr)
    with pa.ipc.new_file(str(p), schema) as w:
        w.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))
    e = entry_path(out, group, 0)
    entry = json.loads(e.read_text())
    entry.update(bytes=p.stat().st_size, sha256=file_sha256(p))
    e.write_text(json.dumps(entry))
    return p


# Read in a child process: before the fix these reads aborted (std::length_error on a negative
# length) or died of SIGBUS, which would take pytest with them.
_CHILD = """
import sys
from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset
for d in sys.argv[1:]:
    try:
        texts = [str(r["text"]) for r in ShardDataset(d, ("cuts",), checksum=d.endswith("sum"))]
        print("READ", texts, flush=True)
    except InputError as exc:
        print("InputError", exc, flush=True)
"""

CASES = [("text", 1, 60), ("speaker", 1, 13), ("recording_id", 2, -3), ("text", 1, 100_000_000)]


def test_string_offsets_past_their_data_are_input_errors(tmp_path: Path) -> None:
    dirs = []
    for k, (column, slot, value) in enumerate(CASES):
        d = tmp_path / (f"{k}-sum" if k % 2 else f"{k}-nosum")  # checksum on/off (index matches)
        write_dummy_output(d, num_cuts=3, shard_size=3)
        _corrupt_offset(d, "cuts", column, slot, value)
        dirs.append(str(d))
    pristine = tmp_path / "pristine"
    write_dummy_output(pristine, num_cuts=3, shard_size=3)
    res = subprocess.run([sys.executable, "-c", _CHILD, str(pristine), *dirs], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, (res.returncode, res.stdout, res.stderr[-2000:])
    lines = res.stdout.splitlines()
    assert lines[0] == f"READ {[f'utterance number {i}' for i in range(3)]}"
    assert len(lines) == 1 + len(CASES)
    for line, d, (column, _, value) in zip(lines[1:], dirs, CASES, strict=True):
        assert line.startswith("InputError ") and f"{d}/shards/00000.cuts.arrow" in line, line
        assert f"column {column!r}" in line and str(value) in line, line
