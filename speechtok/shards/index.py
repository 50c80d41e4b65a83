"""The index of an output directory: which shard files are committed, with checksums.

On disk (all JSON with sorted keys, no timestamps, written tmp + fsync + rename):

- ``OUT/index.d/{group}.{shard:05d}.json`` -- one *entry file* per committed shard file. This
  is the source of truth. Each writer only creates its own entry files, so Slurm-array jobs
  writing different shard ranges of one ``OUT`` concurrently never lose each other's entries
  (no read-modify-write of a shared file).
- ``OUT/index.json`` -- the merged view ``{"format", "schema_version", "groups", "shards"}``
  that people and other tools read, regenerated under an advisory ``flock`` on
  ``OUT/index.lock``: after every commit by `record_entry` (the standalone API, O(n) per
  commit), or only when a batch of commits is done by `IndexWriter.flush` (the runner and
  `ShardWriter`: O(1) per commit, one full scan per flush). `ShardIndex.load` merges both
  (``index.d`` wins), so a stale ``index.json`` (a run in flight or killed before its flush, a
  file system without ``flock``) is harmless; the next flush makes it exact again.

Entries are checked on load: the group must be a valid group name
(`speechtok.shards.names`), and the path must be exactly the canonical
``shards/{shard:05d}.{group}.arrow`` (no absolute path, no ``..``); `safe_shard_file` further
refuses a ``shards`` directory or shard file that is a symlink leading out of ``OUT``. So a
crafted or corrupted index can neither make a reader open nor ``--overwrite-stage`` delete a
file outside ``OUT``; `speechtok verify` names each bad entry.

A shard file counts as committed only when its entry says ``status: "committed"`` *and* the
data file exists with the recorded size; an entry whose file is missing is "in flight" (the
writer crashed between recording the entry and the rename), and a data file without an entry
is "uncommitted". Readers skip both; `speechtok verify` reports both.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speechtok.atomic import fsync_dir
from speechtok.errors import InputError
from speechtok.faults import maybe_fault
from speechtok.shards.names import is_group_name

INDEX_FORMAT = "speechtok-shards"
INDEX_VERSION = 1


def shard_path(out_dir: str | os.PathLike[str], shard: int, group: str) -> Path:
    """``OUT/shards/{shard:05d}.{group}.arrow``."""
    return Path(out_dir) / "shards" / f"{shard:05d}.{group}.arrow"


def canonical_path(shard: int, group: str) -> str:
    """The only path an index entry may hold: ``shards/{shard:05d}.{group}.arrow``."""
    return f"shards/{shard:05d}.{group}.arrow"


def safe_shard_file(out_dir: str | os.PathLike[str], entry: ShardEntry) -> Path:
    """``OUT/<entry.path>``, refusing (`InputError`) a file or ``shards`` directory that is a
    symlink resolving outside ``OUT`` (the entry's path itself is checked on load)."""
    out = Path(out_dir)
    path = out / entry.path
    root = os.path.realpath(out)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise InputError(str(path), f"resolves to {real}, outside the output directory {root} "
                         "(a symlink); an index entry may only name a file inside OUT")
    return path


def entry_path(out_dir: str | os.PathLike[str], group: str, shard: int) -> Path:
    """``OUT/index.d/{group}.{shard:05d}.json``."""
    return Path(out_dir) / "index.d" / f"{group}.{shard:05d}.json"


@dataclass(frozen=True, kw_only=True)
class ShardEntry:
    """One committed shard file of one group.

    Attributes:
        group: field group, e.g. ``"units.km100"``. shard: shard number.
        path: file path relative to ``OUT`` (``shards/00003.units.km100.arrow``).
        sha256: hex digest of the whole file. rows: number of rows. bytes: file size.
        fingerprint: the group's fingerprint. status: ``"committed"``.
        compression: ``None`` (zero-copy memory map) or ``"zstd"``.
    """

    group: str
    shard: int
    path: str
    sha256: str
    rows: int
    bytes: int
    fingerprint: str
    status: str = "committed"
    compression: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ShardEntry:
        """Parses an entry; raises `InputError` naming `source` when it is malformed."""
        try:
            entry = cls(**data)
        except TypeError as exc:  # not a mapping, or missing / unknown keys
            raise InputError(source, f"malformed index entry ({exc})") from exc
        if not (isinstance(entry.rows, int) and isinstance(entry.bytes, int)
                and isinstance(entry.shard, int) and isinstance(entry.sha256, str)):
            raise InputError(source, "malformed index entry (rows/bytes/shard must be int and sha256 a str, "
                             f"but are {entry.rows!r}/{entry.bytes!r}/{entry.shard!r}/{entry.sha256!r})")
        if not is_group_name(entry.group) or entry.shard < 0:
            raise InputError(source, f"index entry with group {entry.group!r} shard "
                             f"{entry.shard!r}: not a valid group name and shard number")
        want = canonical_path(entry.shard, entry.group)
        if entry.path != want:
            raise InputError(source, f"index entry for {entry.group!r} shard {entry.shard} has "
                             f"path {entry.path!r}; it must be {want!r} (relative to OUT, no "
                             f"'..', not absolute). The index is corrupt or was edited: delete "
                             f"the entry (or the whole output) and rerun")
        return entry


def _json_text(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=1, allow_nan=False) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes `data` as stable JSON to `path` via a unique tmp file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = _json_text(data)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    maybe_fault("mid_index_update")  # crash tests: tmp JSON written, not renamed
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def _index_lock(out_dir: Path) -> Iterator[None]:
    with open(out_dir / "index.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except OSError:  # file systems without flock: index.d stays authoritative
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"unreadable index JSON ({exc})") from exc


def empty_output_reason(out_dir: str | os.PathLike[str]) -> str:
    """Why `out_dir` has no index entries: it does not exist, is a file, or holds no index."""
    out = Path(out_dir)
    if not out.exists():
        return "does not exist; pass the -o directory of `speechtok run`"
    if not out.is_dir():
        return "is a file, not an output directory; pass the -o directory of `speechtok run`"
    return ("has no index entries (no index.json or index.d/): not a speechtok output directory, "
            "or an empty one")


class ShardIndex:
    """All entries of an output directory, merged from ``index.json`` and ``index.d/``."""

    def __init__(self, out_dir: str | os.PathLike[str], entries: dict[tuple[str, int], ShardEntry]):
        self.out_dir = Path(out_dir)
        self._entries = entries

    @classmethod
    def load(cls, out_dir: str | os.PathLike[str],
             problems: list[tuple[str, str]] | None = None) -> ShardIndex:
        """Reads the index of `out_dir` (empty when there is none yet).

        Args:
            problems: None: a bad entry raises `InputError`. A list: each bad entry is
                appended as ``(source, reason)`` and left out (what `verify` does).
        """
        out = Path(out_dir)
        entries: dict[tuple[str, int], ShardEntry] = _load_index_json(out, problems)
        d = out / "index.d"
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                if not p.name.startswith("."):
                    _add_entry(entries, problems, p)
        return cls(out, entries)

    def require_entries(self) -> ShardIndex:
        """Itself; raises `InputError` naming the directory when it has no entry at all."""
        if not self._entries:
            raise InputError(str(self.out_dir), empty_output_reason(self.out_dir))
        return self

    def entries(self, group: str | None = None) -> list[ShardEntry]:
        """Entries sorted by (group, shard), optionally of one group."""
        return [e for k, e in sorted(self._entries.items()) if group is None or k[0] == group]

    def groups(self) -> list[str]:
        """Group names with at least one entry, sorted (``cuts`` first)."""
        names = {g for g, _ in self._entries}
        return sorted(names, key=lambda g: (g != "cuts", g))

    def entry(self, group: str, shard: int) -> ShardEntry | None:
        """The recorded entry, whether or not its file exists."""
        return self._entries.get((group, shard))

    def state(self, group: str, shard: int) -> str:
        """``"committed"``, ``"in_flight"`` (entry, no file), ``"resized"`` (file size differs
        from the entry: truncated or overwritten), ``"outside"`` (a symlink leading out of
        ``OUT``) or ``"absent"`` (no entry)."""
        e = self._entries.get((group, shard))
        if e is None:
            return "absent"
        try:
            size = safe_shard_file(self.out_dir, e).stat().st_size
        except InputError:
            return "outside"
        except OSError:
            return "in_flight"
        if e.status != "committed":
            return "in_flight"
        return "committed" if size == e.bytes else "resized"

    def committed(self, group: str, shard: int) -> ShardEntry | None:
        """The entry if the shard is committed and its file exists with the recorded size.

        A runner redoes every shard for which this is None.
        """
        return self._entries[(group, shard)] if self.state(group, shard) == "committed" else None

    def committed_shards(self, group: str) -> list[int]:
        """Shard numbers of `group` that are committed (see `committed`)."""
        return [s for g, s in sorted(self._entries) if g == group and self.committed(g, s)]

    def fingerprint_of(self, group: str) -> str | None:
        """The fingerprint recorded for `group`, or None when the group has no entries.

        Raises `InputError` when entries disagree (an output mixing fingerprints).
        """
        return _one_fingerprint(self.out_dir, group, {e.fingerprint for e in self.entries(group)})

    def to_json(self) -> dict[str, Any]:
        """The merged ``index.json`` content."""
        groups: dict[str, Any] = {}
        for g in self.groups():
            es = self.entries(g)
            groups[g] = {
                "fingerprints": sorted({e.fingerprint for e in es}),
                "shards": len(es),
                "rows": sum(e.rows for e in es),
                "bytes": sum(e.bytes for e in es),
            }
        return {
            "format": INDEX_FORMAT,
            "schema_version": INDEX_VERSION,
            "groups": groups,
            "shards": [e.to_dict() for e in self.entries()],
        }


def _load_index_json(out: Path, problems: list[tuple[str, str]] | None = None
                     ) -> dict[tuple[str, int], ShardEntry]:
    p = out / "index.json"
    if not p.exists():
        return {}
    data = _read_json(p)
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise InputError(str(p), f"not a speechtok index (format != {INDEX_FORMAT!r})")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > INDEX_VERSION:
        raise InputError(str(p), f"index schema_version {version!r} is not one this speechtok "
                         f"reads (<= {INDEX_VERSION}); upgrade speechtok")
    entries: dict[tuple[str, int], ShardEntry] = {}
    for raw in data.get("shards", []):
        _add_entry(entries, problems, p, raw)
    return entries


_READ = object()  # `_add_entry`: the entry is the file's JSON


def _add_entry(entries: dict[tuple[str, int], ShardEntry], problems: list[tuple[str, str]] | None,
               source: Path, raw: Any = _READ) -> None:
    """Adds the entry `raw` (default: read the JSON file `source`); with `problems`, one that fails to
    load is recorded there as ``(source, reason)`` instead of raising."""
    try:
        e = ShardEntry.from_dict(_read_json(source) if raw is _READ else raw, source=str(source))
    except InputError as exc:
        if problems is None:
            raise
        problems.append((exc.item, exc.reason))
        return
    entries[(e.group, e.shard)] = e


def record_entry(out_dir: str | os.PathLike[str], entry: ShardEntry) -> None:
    """Records `entry` atomically in ``index.d``, then merges it into ``index.json`` under a lock.

    Cost is one entry file plus one read and rewrite of ``index.json`` (not a scan of
    ``index.d``), so committing n shards stays O(n) file operations each.
    """
    out = Path(out_dir)
    write_json_atomic(entry_path(out, entry.group, entry.shard), entry.to_dict())
    with _index_lock(out):
        entries = _load_index_json(out)
        entries[(entry.group, entry.shard)] = entry
        write_json_atomic(out / "index.json", ShardIndex(out, entries).to_json())


def rewrite_index(out_dir: str | os.PathLike[str]) -> bool:
    """Regenerates ``OUT/index.json`` from ``index.d`` and the old ``index.json`` (a full scan).

    The file is left untouched when its content would not change; returns whether it was
    written.
    """
    out = Path(out_dir)
    with _index_lock(out):
        data = ShardIndex.load(out).to_json()
        path = out / "index.json"
        with contextlib.suppress(OSError):
            if path.read_bytes() == _json_text(data).encode("utf-8"):
                return False
        write_json_atomic(path, data)
        return True


class IndexWriter:
    """The index of one output directory as a writer process keeps it: loaded once, then
    updated in memory on each commit.

    `record` writes only the shard's entry file in ``index.d`` (O(1) per commit, the same
    crash-safe tmp + fsync + rename as before); `fingerprint_of` answers from memory. The
    merged ``index.json`` is regenerated by `flush` (a full scan of ``index.d`` under the index
    lock, so entries that other processes, e.g. Slurm-array tasks, committed meanwhile are
    merged too), which the owner calls when a batch of commits is done: the runner at the end
    of each stage and of the run, `ShardWriter` at `finalize`. Until then ``index.json`` may
    be stale, which readers tolerate (`ShardIndex.load` merges ``index.d``).

    Only entries this writer records are tracked after loading; entries other processes add
    later are seen by `flush` and by a fresh `ShardIndex.load`, not by `fingerprint_of`.
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out = Path(out_dir)
        self.index = ShardIndex.load(self.out)
        self._fps: dict[str, set[str]] = {}
        for (g, _), e in self.index._entries.items():
            self._fps.setdefault(g, set()).add(e.fingerprint)
        self.dirty = False

    def fingerprint_of(self, group: str) -> str | None:
        """The fingerprint of `group` (None when it has no entry); `InputError` when mixed."""
        return _one_fingerprint(self.out, group, self._fps.get(group, set()))

    def record(self, entry: ShardEntry) -> None:
        """Writes `entry`'s file in ``index.d`` atomically and adds it to the in-memory index."""
        write_json_atomic(entry_path(self.out, entry.group, entry.shard), entry.to_dict())
        key = (entry.group, entry.shard)
        old = self.index._entries.get(key)
        self.index._entries[key] = entry
        if old is not None:
            self._drop_unused_fingerprint(old)
        self._fps.setdefault(entry.group, set()).add(entry.fingerprint)
        self.dirty = True

    def _drop_unused_fingerprint(self, old: ShardEntry) -> None:
        """Forgets `old`'s fingerprint when no entry of its group in memory has it any more."""
        if not any(e.fingerprint == old.fingerprint for k, e in self.index._entries.items() if k[0] == old.group):
            self._fps.get(old.group, set()).discard(old.fingerprint)

    def forget(self, group: str, shard: int) -> None:
        """Uncommits shard `shard` of `group`: its entry leaves ``index.json`` (rewritten
        atomically, without a scan of ``index.d``), then its entry file is removed (fsynced), both
        under the index lock, and it is dropped from memory (with its fingerprint when no other
        entry of `group` has it). The data file stays until the next commit replaces it. A crash in
        between leaves the entry file, so the shard reads as still committed, never half-forgotten."""
        key = (group, shard)
        with _index_lock(self.out):
            entries = _load_index_json(self.out)
            if entries.pop(key, None) is not None:
                write_json_atomic(self.out / "index.json", ShardIndex(self.out, entries).to_json())
            p = entry_path(self.out, group, shard)
            if p.exists():
                p.unlink()
                fsync_dir(p.parent)
        old = self.index._entries.pop(key, None)
        if old is not None:
            self._drop_unused_fingerprint(old)
        self.dirty = True

    def remove_group(self, group: str) -> int:
        """`remove_entries` for `group`, also dropped from memory; returns the count."""
        n = remove_entries(self.out, group)
        self.index._entries = {k: v for k, v in self.index._entries.items() if k[0] != group}
        self._fps.pop(group, None)
        return n

    def flush(self, *, force: bool = False) -> bool:
        """Regenerates ``index.json`` (see `rewrite_index`) if a commit was recorded since the
        last flush, or always with `force`; returns whether the file was written."""
        if not (self.dirty or force):
            return False
        written = rewrite_index(self.out)
        self.dirty = False
        return written


def group_fingerprint(out_dir: str | os.PathLike[str], group: str) -> str | None:
    """The fingerprint OUT holds for `group`, from ``index.json`` and one entry file (cheap)."""
    out = Path(out_dir)
    fps = {e.fingerprint for (g, _), e in _load_index_json(out).items() if g == group}
    d = out / "index.d"
    if d.is_dir():
        for p in d.glob(f"{group}.[0-9]*.json"):
            fps.add(ShardEntry.from_dict(_read_json(p), source=str(p)).fingerprint)
            break
    return _one_fingerprint(out, group, fps)


def _one_fingerprint(out: str | os.PathLike[str], group: str, fps: set[str]) -> str | None:
    """The fingerprint in `fps`, or None when it is empty; `InputError` when `group` of the
    output `out` mixes several (a half-replaced group)."""
    if len(fps) > 1:
        raise InputError(str(out), f"group {group!r} mixes fingerprints {sorted(fps)}; "
                         "delete the group and rerun")
    return next(iter(fps), None)


def remove_entries(out_dir: str | os.PathLike[str], group: str) -> int:
    """Deletes every entry and shard file of `group` (the ``--overwrite-stage`` path); returns the count."""
    out = Path(out_dir)
    if not is_group_name(group):
        raise InputError(str(out), f"{group!r} is not a group name; nothing was deleted")
    index = ShardIndex.load(out)
    shards = out / "shards"
    root = os.path.realpath(out)
    if shards.exists() and os.path.commonpath([root, os.path.realpath(shards)]) != root:
        raise InputError(str(shards), f"resolves to {os.path.realpath(shards)}, outside {root} "
                         "(a symlink); refusing to delete shard files through it")
    n = 0
    with _index_lock(out):
        for e in index.entries(group):
            # Entry paths are canonical (checked on load); unlinking a symlink removes the
            # link, never its target.
            for p in (entry_path(out, group, e.shard), shard_path(out, e.shard, group)):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            n += 1
        for p in shards.glob(f"*.{group}.arrow*"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        remaining = {k: v for k, v in index._entries.items() if k[0] != group}
        write_json_atomic(out / "index.json", ShardIndex(out, remaining).to_json())
    return n
