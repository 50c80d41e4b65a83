"""`verify_output`: recompute checksums and check every shard file of an output directory.

Checks per indexed file: present (else *in flight*), size and sha256 equal to the index,
readable Arrow IPC, speechtok metadata and schema version, schema equal to the group's typed
schema, fingerprint equal to the index, row count equal to the index and to the cuts shard,
ids equal to the cuts shard's ids row by row, list offsets in range, full Arrow validation.
Per output: every group has every shard that ``cuts`` has, one fingerprint per group, and no
``.arrow`` file without an index entry (*uncommitted*). Leftover ``*.tmp.*`` files are
warnings (a run in flight, or a crash; a rerun replaces them).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from speechtok.errors import InputError, check_at_least
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, empty_output_reason, safe_shard_file
from speechtok.shards.schema import payload_columns


@dataclass
class VerifyReport:
    """Outcome of `verify_output`.

    Attributes:
        problems: (path, what is wrong) for every bad shard file or index entry.
        warnings: (path, note) for things that do not make the output wrong.
        files: number of shard files checked; bytes: their total size.
    """

    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_file(f: ShardFile, cuts: ShardFile | None) -> None:
    """Full structural checks beyond what opening does; raises `InputError`."""
    nb = len(f.batch_starts) - 1
    vocab = f.meta.vocab_size if f.meta.kind in ("units", "codes") else None
    for b in range(nb):  # opening `f` fully validated each batch (`ShardFile.batch`)
        for col in payload_columns(f.meta):
            if col == "alignment" or not pa.types.is_list(f.schema.field(col).type):
                continue
            lc = f.list_column(b, col)
            ids = lc.values[lc.offsets[0] : lc.offsets[-1]] if len(lc.offsets) else lc.values[:0]
            if vocab and col == f.meta.kind and ids.size and int(ids.max()) >= vocab:
                raise InputError(f.item, f"column {col!r} holds id {int(ids.max())} >= vocab_size "
                                 f"{vocab} (a corrupt payload); rerun the stage")
    if cuts is not None:
        if cuts.num_rows != f.num_rows:
            raise InputError(f.item, f"has {f.num_rows} rows but {cuts.item} has {cuts.num_rows}")
        if not f.all_ids().equals(cuts.all_ids()):
            raise InputError(f.item, f"ids are not aligned row by row with {cuts.item}")


def verify_output(out_dir: str | os.PathLike[str], *, checksum: bool = True,
                  sample: int | None = None, seed: int = 0) -> VerifyReport:
    """Checks every shard of `out_dir` (see module docstring); never raises for bad shards.

    Args:
        sample: check the files of only this many data shards, drawn at random (`seed`), for
            a quick look at a large output; the index-level checks (entries, fingerprints,
            missing shards) still cover every shard.
    """
    check_at_least(1, sample=sample)  # 0 checked nothing and said OK; -1 was a ValueError
    out = Path(out_dir)
    rep = VerifyReport()
    try:
        index = ShardIndex.load(out, problems=rep.problems)  # bad entries named, left out
    except InputError as exc:
        rep.problems.append((exc.item, exc.reason))
        return rep
    if not index.entries() and not rep.problems:
        rep.problems.append((str(out), empty_output_reason(out)))
    groups = index.groups()
    for g in groups:
        try:
            index.fingerprint_of(g)
        except InputError as exc:
            rep.problems.append((exc.item, exc.reason))
    cuts_shards = {e.shard for e in index.entries("cuts")}
    cuts_files: dict[int, ShardFile | None] = {}

    def open_cuts(shard: int) -> ShardFile | None:
        if shard not in cuts_files:
            e = index.committed("cuts", shard)
            try:
                cuts_files[shard] = (ShardFile(out / e.path, e, group="cuts", checksum=False)
                                     if e else None)
            except InputError:
                cuts_files[shard] = None  # reported when "cuts" itself is checked
        return cuts_files[shard]

    chosen: set[int] | None = None
    if sample is not None:
        every = sorted({e.shard for e in index.entries()})
        chosen = set(random.Random(seed).sample(every, min(sample, len(every))))
    for g in groups:
        shards = {e.shard for e in index.entries(g)}
        for s in sorted(cuts_shards - shards) if g != "cuts" else []:
            rep.problems.append((str(out / "shards" / f"{s:05d}.{g}.arrow"),
                                 "missing: cuts has this shard but the group has no entry"))
        for e in index.entries(g):
            if chosen is not None and e.shard not in chosen:
                continue
            path = out / e.path
            state = index.state(g, e.shard)
            if state == "outside":
                try:
                    safe_shard_file(out, e)
                except InputError as exc:
                    rep.problems.append((exc.item, exc.reason))
                continue
            if state == "in_flight":
                rep.problems.append((str(path), "indexed but missing (in flight, or deleted)"))
                continue
            if state == "resized":
                rep.problems.append((str(path), f"size {path.stat().st_size} differs from the "
                                     f"index ({e.bytes} bytes): truncated or overwritten"))
                continue
            rep.files += 1
            rep.bytes += e.bytes
            try:
                f = ShardFile(path, e, group=g, checksum=checksum)
                try:
                    _check_file(f, open_cuts(e.shard) if g != "cuts" else None)
                finally:
                    f.close()
            except InputError as exc:
                rep.problems.append((exc.item, exc.reason))
    indexed = {str(out / e.path) for e in index.entries()}
    shard_dir = out / "shards"
    for p in sorted(shard_dir.iterdir()) if shard_dir.is_dir() and sample is None else []:
        if ".tmp" in p.name:
            rep.warnings.append((str(p), "temporary file of a shard in flight (or of a crash)"))
        elif p.suffix == ".arrow" and str(p) not in indexed:
            rep.problems.append((str(p), "present but not in the index (uncommitted)"))
    for cf in cuts_files.values():
        if cf is not None:
            cf.close()
    return rep
