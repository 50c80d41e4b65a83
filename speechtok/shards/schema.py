"""Typed Arrow schemas of speechtok shards, their provenance metadata and column builders.

One shard file holds one *field group* (``cuts``, ``units.<name>``, ``codes.<name>``,
``feats.<name>``, ``nbest.<name>``, ``align.<name>``) for the cuts of one shard, one row per cut. Columns:

======== ============================================================================
kind     columns (after ``id: utf8``, always first)
======== ============================================================================
cuts     ``recording_id: utf8``, ``start: float64``, ``duration: float64``,
         ``sampling_rate: int32``, ``text``, ``speaker``, ``language: utf8`` (nullable),
         ``alignment: list<struct<word: utf8, start: float64, duration: float64>>``
         (nullable), ``cut: utf8`` (nullable, the lhotse cut as JSON, for exports)
units    ``units: list<uint16>``, ``durations: list<uint16>`` (nullable; run lengths when
         the units were deduplicated)
codes    ``codes: list<fixed_size_list<uint16, Q>>`` (T frames of Q codebooks)
feats    ``feats: list<fixed_size_list<float16|float32, D>>`` (T frames of D dims); the
         kinds ``ctc`` (posteriors) and ``states`` (encoder states) use the same layout
nbest    ``texts: list<utf8>``, ``scores: list<float32>`` (hypotheses, best first)
align    ``alignment``: as in cuts (word alignments made after ingest, e.g. by CTC forced
         alignment; a group of its own so that adding them rewrites no cuts file)
======== ============================================================================

The schema metadata key ``b"speechtok"`` holds the group's provenance as JSON with sorted
keys (`GroupMeta` plus ``schema_version``); nothing else, so identical input gives identical
bytes. No pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from speechtok.errors import ConfigError, InputError
from speechtok.shards.names import is_group_name

#: Version of the on-disk layout this code writes. Readers accept every version <= this one.
SCHEMA_VERSION = 1
#: Schema metadata key holding the provenance JSON.
META_KEY = b"speechtok"
#: Kinds with a frame payload stored as ``list<fixed_size_list<float, D>>``.
FLOAT_KINDS = ("feats", "ctc", "states")
KINDS = ("cuts", "units", "codes", "nbest", "align", *FLOAT_KINDS)
_ALIGN_TYPE = pa.struct(
    [("word", pa.utf8()), ("start", pa.float64()), ("duration", pa.float64())]
)


@dataclass(frozen=True, kw_only=True)
class GroupMeta:
    """Provenance of one field group, stored in every shard file of the group.

    Attributes:
        group: ``"cuts"`` or ``"<kind>.<name>"``, e.g. ``"units.km100"``.
        kind: one of `KINDS`; must equal the part of ``group`` before the first dot.
        stage: name of the stage that wrote the group; ``stage_version`` its code version.
        config: the stage's full config (JSON-serialisable).
        fingerprint: hash of upstream fingerprint + config + code version + model checksum.
        frame_rate: frames per second of the payload (units, codes, feats).
        vocab_size: number of unit ids (units) or entries per codebook (codes), <= 65536.
        num_codebooks: Q for codes. dim: D for float kinds. dtype: ``"float16"|"float32"``.
        model_checksum: sha256 of the model weights or centroids, when there is one.
    """

    group: str
    kind: str
    stage: str
    stage_version: str
    config: dict[str, Any] = field(default_factory=dict)
    fingerprint: str
    upstream_fingerprint: str | None = None
    frame_rate: float | None = None
    vocab_size: int | None = None
    num_codebooks: int | None = None
    dim: int | None = None
    dtype: str | None = None
    model_checksum: str | None = None

    def validate(self) -> None:
        """Raises `ConfigError` when a field is inconsistent with the others."""
        if not is_group_name(self.group):
            raise ConfigError(
                "group", self.group, "must be 'cuts' or '<kind>.<name>' with name 1-64 characters "
                "of [A-Za-z0-9_-] starting with a letter or digit")
        if self.kind not in KINDS:
            raise ConfigError("kind", self.kind, f"must be one of {KINDS}")
        if self.group.split(".", 1)[0] != self.kind:
            raise ConfigError("group", self.group, f"must start with its kind {self.kind!r}")
        if (self.kind == "cuts") != (self.group == "cuts"):
            raise ConfigError("group", self.group, "must be 'cuts' exactly when kind is 'cuts'")
        if not self.fingerprint:
            raise ConfigError("fingerprint", self.fingerprint, "must be a non-empty string")
        if self.vocab_size is not None and not 1 <= self.vocab_size <= 65536:
            raise ConfigError("vocab_size", self.vocab_size, "must be in [1, 65536] (uint16 ids)")
        if self.kind == "codes" and (self.num_codebooks is None or self.num_codebooks < 1):
            raise ConfigError("num_codebooks", self.num_codebooks, "must be >= 1 for codes")
        if self.kind in FLOAT_KINDS:
            if self.dim is None or self.dim < 1:
                raise ConfigError("dim", self.dim, f"must be >= 1 for kind {self.kind!r}")
            if self.dtype not in ("float16", "float32"):
                raise ConfigError("dtype", self.dtype, "must be 'float16' or 'float32'")
        if self.frame_rate is not None and not self.frame_rate > 0:
            raise ConfigError("frame_rate", self.frame_rate, "must be > 0")
        try:
            json.dumps(self.config, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError("config", self.config, f"must be JSON-serialisable ({exc})") from exc

    def to_json(self) -> str:
        """Stable JSON (sorted keys, no whitespace variance) including ``schema_version``."""
        return json.dumps(
            {"schema_version": SCHEMA_VERSION, **asdict(self)},
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str) -> GroupMeta:
        """Parses `to_json` output; `source` names the file in errors. Raises `InputError`."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise InputError(source, f"corrupt speechtok schema metadata (not a JSON object: {data!r:.80})")
            version = data.pop("schema_version", None)
            if not isinstance(version, int) or version < 1:
                raise InputError(source, f"corrupt speechtok schema metadata (bad schema_version {version!r})")
            if version > SCHEMA_VERSION:
                raise InputError(
                    source,
                    f"schema_version {version} was written by a newer speechtok (this one reads "
                    f"<= {SCHEMA_VERSION}); upgrade speechtok",
                )
            meta = cls(**data)
            meta.validate()
        except InputError:
            raise
        except (ValueError, TypeError, ConfigError, UnicodeDecodeError) as exc:
            raise InputError(source, f"corrupt speechtok schema metadata ({exc})") from exc
        return meta


def payload_columns(meta: GroupMeta) -> tuple[str, ...]:
    """Names of the columns after ``id`` for `meta`'s kind (see the module table)."""
    kind = "feats" if meta.kind in FLOAT_KINDS else meta.kind
    return {
        "cuts": ("recording_id", "start", "duration", "sampling_rate", "text", "speaker",
                 "language", "alignment", "cut"),
        "units": ("units", "durations"),
        "codes": ("codes",),
        "feats": ("feats",),
        "nbest": ("texts", "scores"),
        "align": ("alignment",),
    }[kind]


def primary_column(meta: GroupMeta) -> str | None:
    """The frame payload column (``units``/``codes``/``feats``/``texts``); None for cuts."""
    return None if meta.kind == "cuts" else payload_columns(meta)[0]


def schema_for(meta: GroupMeta) -> pa.Schema:
    """The typed Arrow schema of `meta`'s group, with provenance metadata under ``speechtok``."""
    meta.validate()
    fields: list[pa.Field] = [pa.field("id", pa.utf8(), nullable=False)]
    if meta.kind == "cuts":
        fields += [
            pa.field("recording_id", pa.utf8()),
            pa.field("start", pa.float64(), nullable=False),
            pa.field("duration", pa.float64(), nullable=False),
            pa.field("sampling_rate", pa.int32()),
            pa.field("text", pa.utf8()),
            pa.field("speaker", pa.utf8()),
            pa.field("language", pa.utf8()),
            pa.field("alignment", pa.list_(_ALIGN_TYPE)),
            pa.field("cut", pa.utf8()),
        ]
    elif meta.kind == "units":
        fields += [
            pa.field("units", pa.list_(pa.uint16()), nullable=False),
            pa.field("durations", pa.list_(pa.uint16())),
        ]
    elif meta.kind == "codes":
        q = int(meta.num_codebooks or 0)
        fields.append(pa.field("codes", pa.list_(pa.list_(pa.uint16(), q)), nullable=False))
    elif meta.kind in FLOAT_KINDS:
        ftype = pa.float16() if meta.dtype == "float16" else pa.float32()
        fields.append(pa.field("feats", pa.list_(pa.list_(ftype, int(meta.dim or 0))), nullable=False))
    elif meta.kind == "align":
        fields.append(pa.field("alignment", pa.list_(_ALIGN_TYPE)))
    else:  # nbest
        fields += [
            pa.field("texts", pa.list_(pa.utf8()), nullable=False),
            pa.field("scores", pa.list_(pa.float32()), nullable=False),
        ]
    return pa.schema(fields, metadata={META_KEY: meta.to_json().encode()})


# --------------------------------------------------------------------------- column builders


def _offsets(lengths: list[int], item: str) -> pa.Array:
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    if off[-1] > np.iinfo(np.int32).max:
        raise InputError(item, f"{off[-1]} values in one record batch exceed 2**31-1; lower batch size")
    return pa.array(off.astype(np.int32))


def _as_uint16(arr: Any, *, item: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype == np.uint16:
        return a
    if a.dtype.kind in "iu" or (a.size == 0 and a.dtype.kind == "f"):
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise InputError(item, f"token ids must be in [0, 65535], got range [{a.min()}, {a.max()}]")
        a = a.astype(np.uint16)
    else:
        raise InputError(item, f"token ids must be an integer array, got dtype {a.dtype}")
    return a


def _concat(arrs: list[np.ndarray], dtype: Any) -> np.ndarray:
    """Concatenation; a single contiguous array is used as is (zero-copy into Arrow)."""
    if not arrs:
        return np.zeros(0, dtype)
    if len(arrs) == 1:
        return np.ascontiguousarray(arrs[0])
    return np.concatenate(arrs)


def _check_vocab(values: np.ndarray, vocab: int | None, item: str) -> None:
    """One vectorised range check per record batch (not per row)."""
    if vocab is not None and values.size and int(values.max()) >= vocab:
        raise InputError(item, f"token id {int(values.max())} is out of range for vocab_size {vocab}")


def uint16_list_array(rows: list[Any], *, item: str, vocab: int | None = None) -> pa.Array:
    """``list<uint16>`` from 1-D integer arrays (shape (T,)); range-checked against `vocab`."""
    arrs = [_as_uint16(r, item=item).reshape(-1) for r in rows]
    values = _concat(arrs, np.uint16)
    _check_vocab(values, vocab, item)
    return pa.ListArray.from_arrays(_offsets([len(a) for a in arrs], item), pa.array(values))


def frames_list_array(
    rows: list[Any], *, width: int, dtype: str, item: str, vocab: int | None = None
) -> pa.Array:
    """``list<fixed_size_list<dtype, width>>`` from 2-D arrays of shape (T, width).

    `dtype` is ``"uint16"`` (codes; range-checked against `vocab`), ``"float16"`` or
    ``"float32"`` (feats; cast from any float dtype).
    """
    arrs: list[np.ndarray] = []
    for r in rows:
        a = np.asarray(r)
        if a.ndim != 2 or a.shape[1] != width:
            raise InputError(item, f"expected shape (T, {width}), got {a.shape}")
        if dtype == "uint16":
            a = _as_uint16(a, item=item)
        elif a.dtype.kind != "f":
            raise InputError(item, f"features must be floating point, got dtype {a.dtype}")
        else:
            a = a.astype(dtype, copy=False)
        arrs.append(np.ascontiguousarray(a).reshape(-1))
    values = _concat(arrs, np.dtype(dtype))
    if dtype == "uint16":
        _check_vocab(values, vocab, item)
    inner = pa.FixedSizeListArray.from_arrays(pa.array(values), width)
    return pa.ListArray.from_arrays(_offsets([len(a) // width for a in arrs], item), inner)


def build_batch(meta: GroupMeta, schema: pa.Schema, rows: list[dict[str, Any]], *, item: str) -> pa.RecordBatch:
    """One record batch of `meta`'s schema from row dicts ``{"id": str, <columns>}``.

    Unknown keys and missing required keys raise `InputError` naming `item` and the row id.
    """
    cols = payload_columns(meta)
    allowed = {"id", *cols}
    for row in rows:
        extra = set(row) - allowed
        if extra:
            raise InputError(
                f"{item} row {row.get('id')!r}",
                f"unknown columns {sorted(extra)} for kind {meta.kind!r}; allowed: {sorted(allowed)}",
            )
    ids = [row.get("id") for row in rows]
    for i in ids:
        if not isinstance(i, str) or not i:
            raise InputError(item, f"every row needs a non-empty str 'id', got {i!r}")
    arrays: list[pa.Array] = [pa.array(ids, pa.utf8())]
    try:
        if meta.kind == "cuts":
            for name in cols:
                ftype = schema.field(name).type
                vals = [row.get(name) for row in rows]
                if name in ("start", "duration") and any(v is None for v in vals):
                    raise InputError(item, f"every cut row needs {name!r}")
                if name == "cut":
                    vals = [v if v is None or isinstance(v, str) else json.dumps(v, sort_keys=True)
                            for v in vals]
                arrays.append(pa.array(vals, ftype))
        elif meta.kind == "units":
            for name in ("units", "durations"):
                vals = [row.get(name) for row in rows]
                if name == "units" and any(v is None for v in vals):
                    raise InputError(item, "every units row needs 'units'")
                if name == "durations" and all(v is None for v in vals):
                    arrays.append(pa.nulls(len(rows), schema.field(name).type))
                    continue
                if name == "durations" and any(v is None for v in vals):
                    raise InputError(item, "'durations' must be given for all rows or none")
                arrays.append(uint16_list_array(
                    vals, item=item, vocab=meta.vocab_size if name == "units" else None))
            du, un = arrays[2], arrays[1]
            if du.null_count == 0 and du.value_lengths() != un.value_lengths():
                raise InputError(item, "'durations' must have the same length as 'units' per row")
        elif meta.kind == "codes":
            vals = [row.get("codes") for row in rows]
            if any(v is None for v in vals):
                raise InputError(item, "every codes row needs 'codes' of shape (T, Q)")
            arrays.append(frames_list_array(vals, width=int(meta.num_codebooks or 0),
                                            dtype="uint16", item=item, vocab=meta.vocab_size))
        elif meta.kind in FLOAT_KINDS:
            vals = [row.get("feats") for row in rows]
            if any(v is None for v in vals):
                raise InputError(item, "every row needs 'feats' of shape (T, D)")
            arrays.append(frames_list_array(vals, width=int(meta.dim or 0),
                                            dtype=str(meta.dtype), item=item))
        elif meta.kind == "align":
            arrays.append(pa.array([_alignment(row.get("alignment"), item) for row in rows],
                                   pa.list_(_ALIGN_TYPE)))
        else:
            texts = [list(row.get("texts") or []) for row in rows]
            scores = [np.asarray(row.get("scores", []), np.float32) for row in rows]
            if any(len(t) != len(s) for t, s in zip(texts, scores, strict=True)):
                raise InputError(item, "'texts' and 'scores' must have equal lengths per row")
            arrays.append(pa.array(texts, pa.list_(pa.utf8())))
            arrays.append(pa.array([s.tolist() for s in scores], pa.list_(pa.float32())))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise InputError(item, f"cannot build column for kind {meta.kind!r}: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _alignment(value: Any, item: str) -> list[dict[str, Any]] | None:
    """An alignment column value: None, or ``[{"word": str, "start": s, "duration": s}]``."""
    if value is None:
        return None
    out = []
    for w in value:
        if not isinstance(w, dict) or set(w) != {"word", "start", "duration"}:
            raise InputError(item, f"alignment entries must be {{word, start, duration}}, got {w!r}")
        out.append({"word": str(w["word"]), "start": float(w["start"]), "duration": float(w["duration"])})
    return out


def row_nbytes(row: dict[str, Any]) -> int:
    """Approximate payload bytes of one row (for rolling shards by size)."""
    n = 0
    for v in row.values():
        n += v.nbytes if isinstance(v, np.ndarray) else 8 * len(v) if isinstance(v, list) else 16
    return n
