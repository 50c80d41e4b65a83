"""Exports of an output directory to the formats other toolkits read.

- ``parquet``: ``DEST/{shard:05d}.parquet`` (zstd), cuts columns joined with the groups'
  columns named like `ShardDataset` row keys (``units.km100``, ``units.km100.durations``);
  provenance JSON per group in the file metadata under ``speechtok``.
- ``hf``: a directory that ``datasets.load_from_disk`` loads (same columns; provenance in
  ``info.description``).
- ``lhotse``: ``DEST/cuts.jsonl.gz``; each cut (rebuilt from the ``cut`` column when the
  runner stored it, else a `MonoCut` without recording) gets custom fields: unit groups as
  int lists (``units_km100``, ``units_km100_durations``), codes and features as lhotse
  `TemporalArray` manifests stored with ``NumpyFilesWriter`` under ``DEST/arrays``
  (``cut.load_custom("codes_q4")`` -> (T, Q)).
- ``fairseq``: ``{split}.tsv`` (first line the audio root, then ``relpath<TAB>num_samples``;
  cut ids when the cuts carry no audio path), ``{split}.km`` (space-separated units per line)
  and ``dict.km.txt`` (``"<unit> <count>"`` for every unit id 0..V-1, never empty). A path or id
  that a ``.tsv`` line cannot hold (a tab, a line break, whitespace at its ends) is refused
  (`InputError`, see `speechtok.exports.lines`).
- ``memmap``: nanoGPT style ``{split}.bin`` (flat uint16 tokens, rows back to back; codes
  frame-major: t0q0 t0q1 .. t1q0 ..), ``{split}.offsets.npy`` (int64 (N+1,)),
  ``{split}.ids.txt`` (one id per line; an id with a line break is refused) and ``{split}.json``
  (group, vocab, codebooks, provenance).
- ``slam``: SLAM-LLM ``{split}.jsonl`` (``key``, ``source``, ``target``; segments cut to files;
  token groups named with ``--group`` as extra columns), see `speechtok.exports.slam`.
- ``nemo``: NeMo ``{split}_manifest.json`` (``audio_filepath``, ``duration``, ``offset`` for
  segments, ``text``, ``lang``, ``speaker``) and lhotse Shar in ``shar/`` with every array group
  as a Shar field, see `speechtok.exports.nemo` and `speechtok.exports.shar`.
- ``espnet``: an ESPnet-SpeechLM ``speechlm1`` data directory for one task template
  (``data.json``, ``wav.scp`` + ``wav.ark`` with the codec/SSL tokens, ``text``, ``utt2spk``,
  ``token_lists/``, ``raw/`` with the audio), see `speechtok.exports.espnet`.
- ``hf-audio``: a ``save_to_disk`` dataset with an ``Audio`` column and every group as columns,
  see `speechtok.exports.hf_audio`.

Every export is written into a temporary directory next to ``DEST`` and renamed to ``DEST``
at the end (files fsynced), so ``DEST`` never holds a partial export or stale files of an
earlier one; a non-empty ``DEST`` is refused unless ``overwrite=True`` (``--overwrite``), which
replaces it whole.

Everything streams shard by shard (or row by row) through memory maps (RAM bounded by one
shard), except ``hf``, which hands `datasets` one memory-mapped table of all shards.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from speechtok.atomic import atomic_dir
from speechtok.errors import ConfigError, InputError
from speechtok.exports.espnet import export_espnet
from speechtok.exports.hf_audio import export_hf_audio
from speechtok.exports.lines import line_break, tsv_field, unwritable
from speechtok.exports.nemo import export_nemo
from speechtok.exports.shar import field_name
from speechtok.exports.slam import export_slam
from speechtok.paths import file_stem_for_id
from speechtok.shards.index import ShardIndex
from speechtok.shards.reader import ShardDataset, row_keys
from speechtok.shards.schema import GroupMeta

FORMATS = ("parquet", "hf", "hf-audio", "lhotse", "fairseq", "memmap", "slam", "nemo", "espnet")


def _groups(index: ShardIndex, groups: Sequence[str] | None) -> list[str]:
    have = index.groups()
    chosen = [g for g in have if g != "cuts"] if groups is None else list(groups)
    for g in chosen:
        if g not in have:
            raise ConfigError("group", g, f"must be one of the output's groups {have}")
    return [g for g in chosen if g != "cuts"]


def _token_group(index: ShardIndex, group: str | None, fmt: str) -> str:
    kinds = ("units",) if fmt == "fairseq" else ("units", "codes")
    cands = [g for g in index.groups() if g.split(".", 1)[0] in kinds]
    if group is None:
        if len(cands) != 1:
            raise ConfigError("group", None, f"must name one of {cands} for --to {fmt}")
        return cands[0]
    if group not in cands:
        raise ConfigError("group", group, f"must be one of the token groups {cands} for --to {fmt}")
    return group


def joined_tables(out_dir: Path, groups: Sequence[str]) -> Iterator[tuple[int, pa.Table, dict[str, GroupMeta]]]:
    """(shard, cuts joined with `groups`' columns, metas) per shard; ids checked, sha256 on."""
    ds = ShardDataset(out_dir, ("cuts", *groups), checksum=True)
    for s in ds.shards:
        files = ds.open_shard(s)
        table = files["cuts"].table()
        metas = {"cuts": files["cuts"].meta}
        for g in groups:
            metas[g] = files[g].meta
            t = files[g].table()
            for key, col in row_keys(g, files[g].meta).items():
                table = table.append_column(key, t.column(col))
        ds.close()
        yield s, table.replace_schema_metadata(None), metas


def _provenance(metas: dict[str, GroupMeta]) -> str:
    return json.dumps({g: json.loads(m.to_json()) for g, m in metas.items()}, sort_keys=True)


def export_parquet(out_dir: Path, dest: Path, groups: Sequence[str]) -> int:
    """One zstd Parquet file per shard; returns rows written."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for s, table, metas in joined_tables(out_dir, groups):
        table = table.replace_schema_metadata({"speechtok": _provenance(metas)})
        pq.write_table(table, dest / f"{s:05d}.parquet", compression="zstd")
        n += table.num_rows
    return n


def export_hf(out_dir: Path, dest: Path, groups: Sequence[str]) -> int:
    """A ``datasets.save_to_disk`` directory; returns rows written."""
    try:
        # lazy: datasets only for this export
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is in the lock
        raise InputError("datasets", f"the Hugging Face `datasets` package is needed ({exc})") from exc
    tables, metas = [], {}
    for _, table, m in joined_tables(out_dir, groups):
        tables.append(table)
        metas = m
    if not tables:
        raise InputError(str(out_dir), "has no committed shards to export")
    info = datasets.DatasetInfo(description="speechtok export; provenance: " + _provenance(metas))
    ds = datasets.Dataset(pa.concat_tables(tables), info=info)
    ds.save_to_disk(str(dest))
    return len(ds)


def export_lhotse(out_dir: Path, dest: Path, groups: Sequence[str], *, final: Path | None = None) -> int:
    """``cuts.jsonl.gz`` with custom fields (see module docstring); returns cuts written.

    `final`: where `dest` will be renamed to; array manifests point there (default `dest`).
    """

    # lazy: lhotse (and torch) take seconds to import
    from lhotse import MonoCut, SupervisionSegment
    from lhotse.cut import Cut
    from lhotse.features.io import NumpyFilesWriter
    from lhotse.serialization import deserialize_item

    dest.mkdir(parents=True, exist_ok=True)
    ds = ShardDataset(out_dir, ("cuts", *groups), checksum=True)
    metas = {g: ds.meta(g) for g in groups}
    n = 0
    arrays_final = str(Path(final or dest).absolute() / "arrays")
    with gzip.open(dest / "cuts.jsonl.gz", "wt", encoding="utf-8") as fout, \
            NumpyFilesWriter(str(dest / "arrays")) as writer:
        for row in ds:
            if row.get("cut"):
                cut: Cut = deserialize_item(json.loads(row["cut"]))
            else:
                sup = SupervisionSegment(
                    id=row["id"], recording_id=row["recording_id"] or row["id"], start=0.0,
                    duration=row["duration"], text=row["text"], speaker=row["speaker"],
                    language=row["language"])
                cut = MonoCut(id=row["id"], start=row["start"], duration=row["duration"],
                              channel=0, supervisions=[sup])
            for g in groups:
                meta = metas[g]
                for key in row_keys(g, meta):
                    value = row[key]
                    name = field_name(key)
                    if value is None:
                        continue
                    if meta.kind in ("nbest", "align"):
                        value = value if isinstance(value, list) else value.tolist()
                        cut = cut.with_custom(name, value)
                    elif meta.kind == "units":
                        cut = cut.with_custom(name, value.tolist())
                    else:
                        shift = 1.0 / meta.frame_rate if meta.frame_rate else None
                        manifest = writer.store_array(
                            file_stem_for_id(f"{name}-{row['id']}"), np.ascontiguousarray(value),
                            frame_shift=shift, temporal_dim=0 if shift else None,
                            start=float(row["start"]))
                        manifest = _relocate(manifest, arrays_final, dataclasses.replace)
                        cut = cut.with_custom(name, manifest)
            fout.write(json.dumps(cut.to_dict(), sort_keys=True) + "\n")
            n += 1
    return n


def _relocate(manifest: Any, storage_path: str, replace: Any) -> Any:
    """An lhotse Array/TemporalArray manifest with its `storage_path` set to `storage_path`."""
    if hasattr(manifest, "array"):  # TemporalArray wraps an Array
        return replace(manifest, array=replace(manifest.array, storage_path=storage_path))
    return replace(manifest, storage_path=storage_path)


def _audio_path(row: dict[str, Any]) -> str | None:
    if not row.get("cut"):
        return None
    rec = json.loads(row["cut"]).get("recording") or {}
    for src in rec.get("sources", []):
        if src.get("type") == "file":
            return str(src["source"])
    return None


_TSV_WHY = ("is empty or holds a tab, a line break or whitespace at its ends, and fairseq reads each .tsv "
            "line as line.strip().split('\\t')")


def export_fairseq(out_dir: Path, dest: Path, group: str, split: str) -> int:
    """``{split}.tsv``, ``{split}.km``, ``dict.km.txt``; returns rows written."""
    dest.mkdir(parents=True, exist_ok=True)
    ds = ShardDataset(out_dir, ("cuts", group), ["duration", "sampling_rate", "cut", group])
    meta = ds.meta(group)
    rows: list[tuple[str | None, int, str]] = []
    counts = np.zeros(meta.vocab_size or 1, np.int64)
    with open(dest / f"{split}.km", "w", encoding="utf-8") as km:
        for row in ds:
            units = row[group]
            km.write(" ".join(map(str, units.tolist())) + "\n")
            bc = np.bincount(units, minlength=len(counts))
            if len(bc) > len(counts):
                counts = np.pad(counts, (0, len(bc) - len(counts)))
            counts += bc
            n_samples = round(row["duration"] * (row["sampling_rate"] or 0))
            rows.append((_audio_path(row), int(n_samples), row["id"]))
    paths = [p for p, _, _ in rows if p is not None]
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]) if paths else "."
    if not tsv_field(root):
        raise unwritable("fairseq", str(out_dir), f"the audio root {root!r}", _TSV_WHY)
    with open(dest / f"{split}.tsv", "w", encoding="utf-8") as tsv:
        tsv.write(root + "\n")
        for path, n_samples, cid in rows:
            rel = os.path.relpath(os.path.abspath(path), root) if path else cid
            if not tsv_field(rel):
                what = f"the audio path {rel!r} of cut {cid!r}" if path else f"cut id {cid!r} (it has no audio path)"
                raise unwritable("fairseq", str(out_dir), what, _TSV_WHY)
            tsv.write(f"{rel}\t{n_samples}\n")
    with open(dest / "dict.km.txt", "w", encoding="utf-8") as d:
        for unit, c in enumerate(counts.tolist()):
            d.write(f"{unit} {c}\n")
    return len(rows)


def export_memmap(out_dir: Path, dest: Path, group: str, split: str) -> int:
    """nanoGPT-style flat uint16 tokens + offsets (see module docstring); returns rows."""
    dest.mkdir(parents=True, exist_ok=True)
    ds = ShardDataset(out_dir, (group,), [group])
    meta = ds.meta(group)
    offsets = [0]
    with open(dest / f"{split}.bin", "wb") as fbin, \
            open(dest / f"{split}.ids.txt", "w", encoding="utf-8") as fids:
        for row in ds:
            tokens = np.ascontiguousarray(row[group]).reshape(-1)
            fbin.write(tokens.tobytes())
            offsets.append(offsets[-1] + int(tokens.size))
            if line_break(str(row["id"])):
                raise unwritable("memmap", str(out_dir), f"cut id {row['id']!r}",
                                 f"holds a line break, and {split}.ids.txt has one id per line")
            fids.write(row["id"] + "\n")
    np.save(dest / f"{split}.offsets.npy", np.asarray(offsets, dtype=np.int64))
    info = {"group": group, "dtype": "uint16", "num_rows": len(offsets) - 1,
            "num_tokens": offsets[-1], "vocab_size": meta.vocab_size,
            "num_codebooks": meta.num_codebooks, "frame_rate": meta.frame_rate,
            "layout": "frame-major (t0q0 t0q1 ... t1q0 ...)" if meta.kind == "codes" else "flat",
            "provenance": json.loads(meta.to_json())}
    (dest / f"{split}.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return len(offsets) - 1


#: A split name names exported files (``DEST/{split}.tsv``): no path separator, no leading dot.
SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def export_output(out_dir: str | os.PathLike[str], to: str, dest: str | os.PathLike[str], *,
                  groups: Sequence[str] | None = None, split: str = "train",
                  overwrite: bool = False, task: str | None = None) -> int:
    """Exports `out_dir` in format `to` (one of `FORMATS`) to `dest`; returns rows written.

    `groups` selects field groups (default: all; fairseq/memmap need exactly one token group,
    chosen automatically when the output has only one). The export is written to a temporary
    directory renamed to `dest` at the end; a non-empty `dest` is an `InputError` unless
    `overwrite` (then it is replaced whole, never mixed with the new files). `task`: the
    ESPnet-SpeechLM task template of ``espnet`` (default ``asr``; see `speechtok.exports.espnet`);
    a `ConfigError` for any other format.
    """
    if task is not None and to != "espnet":
        raise ConfigError("task", task, "only applies to --to espnet")
    if not isinstance(split, str) or not SPLIT_RE.match(split):
        # "../x" wrote DEST/../x.tsv, outside the destination; "a/b" ended in FileNotFoundError
        raise ConfigError("split", split, "must be 1-64 characters of [A-Za-z0-9_.-] starting with a letter "
                          "or digit (it names the exported files)")
    final = Path(dest)
    if final.resolve() == Path(out_dir).resolve() or Path(out_dir).resolve() in final.resolve().parents:
        raise ConfigError("output", str(final), "must be outside the output directory being exported")
    with atomic_dir(final, overwrite=overwrite) as tmp:
        return _export(out_dir, to, tmp, final, groups=groups, split=split, task=task)


def _export(out_dir: str | os.PathLike[str], to: str, d: Path, final: Path, *,
            groups: Sequence[str] | None, split: str, task: str | None = None) -> int:
    if to not in FORMATS:
        raise ConfigError("to", to, f"must be one of {FORMATS}")
    out = Path(out_dir)
    index = ShardIndex.load(out).require_entries()
    if "cuts" not in index.groups():
        raise InputError(str(out), "has no cuts group (not a speechtok output?)")
    if to in ("fairseq", "memmap"):
        if groups is not None and len(groups) > 1:
            raise ConfigError("group", list(groups), f"must be a single group for --to {to}")
        g = _token_group(index, groups[0] if groups else None, to)
        return export_fairseq(out, d, g, split) if to == "fairseq" else export_memmap(out, d, g, split)
    chosen = _groups(index, groups)
    if to == "nemo":
        return export_nemo(out, d, chosen if groups else [], split, shar_groups=chosen)
    if to == "espnet":
        return export_espnet(out, d, chosen, task=task or "asr", final=final)
    if to == "hf-audio":
        return export_hf_audio(out, d, chosen)
    if to == "slam":
        return export_slam(out, d, chosen if groups else [], split, final=final)
    if to == "lhotse":
        return export_lhotse(out, d, chosen, final=final)
    if to == "parquet":
        return export_parquet(out, d, chosen)
    return export_hf(out, d, chosen)


__all__ = ["FORMATS", "export_output", "joined_tables"]
