"""From features to unit sequences: batched assignment, run-length dedup with durations, unit BPE.

- `encode_units(model, feats)` assigns the frames of many cuts at once (concatenated into
  batches of about `batch_frames`, then split back), which gives exactly the units of assigning
  each cut alone: assignment is per frame.
- `dedup(units)` collapses runs of a repeated unit into (unit, duration) pairs, as GSLM and
  the "units with durations" of speech LMs do; `expand` inverts it. A run longer than 65535
  frames is split so durations fit in uint16.
- `UnitBPE` trains sentencepiece BPE over unit sequences (each unit is one character of
  Unicode's supplementary private-use area A, U+F0000 + unit), so a frequent unit n-gram becomes
  one token. Every one of the K units is put in the vocabulary (training sees one extra sentence
  holding each unit once), so no unit ever becomes `<unk>`; an id or unit out of range is an
  error.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm

from speechtok import atomic
from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.tokenizers.kmeans import KMeansModel

MAX_DURATION = 65535
BPE_CHAR_OFFSET = 0xF0000  # Unicode supplementary private-use area A
BPE_MAX_UNITS = 65534  # U+F0000..U+FFFFD
BPE_MODEL_FILE = "unit_bpe.model"  # the sentencepiece model (a protobuf), as trained
BPE_INFO_FILE = "unit_bpe.json"  # format, k, vocab_size, checksum, the units it was fitted on
BPE_FORMAT = "speechtok.unit_bpe"


@dataclass(frozen=True)
class UnitSequence:
    """Units of one cut.

    Attributes:
        units: `(T,)` uint16, or `(T',)` after dedup.
        durations: `(T',)` uint16 frames per unit after dedup, else None.
    """

    units: np.ndarray
    durations: np.ndarray | None = None


def dedup(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encodes `units` `(T,)` -> (units `(T',)` uint16, durations `(T',)` uint16).

    Runs longer than 65535 frames are split into several entries of the same unit.
    """
    u = np.asarray(units)
    if u.ndim != 1:
        raise InputError("units", f"must be 1-D (T,), but have shape {u.shape}")
    if u.size == 0:
        return np.zeros(0, np.uint16), np.zeros(0, np.uint16)
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    lengths = np.diff(np.append(starts, u.size))
    vals = u[starts]
    if lengths.max() > MAX_DURATION:
        reps = (lengths + MAX_DURATION - 1) // MAX_DURATION  # pieces per run
        vals = np.repeat(vals, reps)
        pieces = np.full(int(reps.sum()), MAX_DURATION, dtype=np.int64)
        last = np.cumsum(reps) - 1
        pieces[last] = lengths - (reps - 1) * MAX_DURATION
        lengths = pieces
    return vals.astype(np.uint16), lengths.astype(np.uint16)


def expand(units: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Inverse of `dedup`: repeats `units` `(T',)` by `durations` `(T',)` -> `(T,)` uint16."""
    if units.shape != durations.shape:
        raise InputError("durations", f"shape {durations.shape} differs from units {units.shape}")
    return np.repeat(units.astype(np.uint16), durations.astype(np.int64))


def encode_units(
    model: KMeansModel,
    feats: Sequence[np.ndarray],
    *,
    deduplicate: bool = False,
    batch_frames: int = 65536,
) -> list[UnitSequence]:
    """Units for a batch of cuts.

    Args:
        model: the fitted `KMeansModel`.
        feats: per cut `(T_i, D)` float16/float32 features.
        deduplicate: run-length encode each cut's units and return durations.
        batch_frames: frames per faiss search call (cuts are concatenated up to this size).
    Returns:
        one `UnitSequence` per cut, in order.
    """
    check_at_least(1, batch_frames=batch_frames)
    out: list[UnitSequence] = []
    group: list[np.ndarray] = []
    size = 0

    def flush() -> None:
        nonlocal group, size
        if not group:
            return
        units = model.assign(np.concatenate(group) if len(group) > 1 else group[0], batch_frames)
        for piece in np.split(units, np.cumsum([len(g) for g in group])[:-1]):
            out.append(UnitSequence(*dedup(piece)) if deduplicate else UnitSequence(piece))
        group, size = [], 0

    for i, f in enumerate(feats):
        if f.ndim != 2 or f.shape[1] != model.dim:
            raise InputError(f"cut {i}", f"features must be (T, {model.dim}), got {f.shape}")
        if size and size + len(f) > batch_frames:
            flush()
        group.append(f)
        size += len(f)
    flush()
    return out


def _to_text(units: np.ndarray, k: int) -> str:
    u = np.asarray(units)
    if u.size and int(u.max()) >= k:
        raise InputError("units", f"unit {int(u.max())} is out of range for k={k}")
    return "".join(map(chr, (u.astype(np.int64) + BPE_CHAR_OFFSET).tolist()))


class UnitBPE:
    """sentencepiece BPE over unit sequences; ids are dense in [0, vocab_size)."""

    def __init__(self, model_proto: bytes, k: int, units_source: dict[str, object] | None = None) -> None:
        self.k = k
        self.model_proto = model_proto
        #: what the BPE was fitted on: {"group", "model_checksum" (of the k-means model), "k"}
        self.units_source = units_source
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self._unk = self._sp.unk_id()

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @classmethod
    def train(
        cls, sequences: Iterable[np.ndarray], *, k: int, vocab_size: int, max_piece_length: int = 16
    ) -> UnitBPE:
        """Learns BPE merges on unit sequences `(T_i,)` uint16 with units in [0, k).

        `vocab_size` counts the K units, `<unk>` and the merges, so it must exceed k + 1.
        """
        if not 2 <= k <= BPE_MAX_UNITS:
            raise ConfigError("k", k, f"must be in [2, {BPE_MAX_UNITS}] for unit BPE")
        if vocab_size <= k + 1:
            raise ConfigError("vocab_size", vocab_size, f"must be > k + 1 = {k + 1}")
        texts = [_to_text(s, k) for s in sequences]
        if not texts:
            raise InputError("sequences", "are empty; unit BPE needs training sequences")
        # one sentence holding every unit once: sentencepiece drops characters it never sees
        texts.append(_to_text(np.arange(k), k))
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            required_chars="".join(chr(BPE_CHAR_OFFSET + u) for u in range(k)),
            split_by_whitespace=False,
            split_by_unicode_script=False,
            split_digits=False,
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            normalization_rule_name="identity",
            max_sentence_length=1 << 24,
            max_sentencepiece_length=max_piece_length,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
        return cls(buf.getvalue(), k)

    def encode(self, units: np.ndarray) -> np.ndarray:
        """Units `(T,)` -> BPE ids `(T'',)` int32; raises on a unit sentencepiece cannot map."""
        ids = np.asarray(self._sp.encode(_to_text(units, self.k)), dtype=np.int32)
        if (ids == self._unk).any():
            raise InputError("units", "contain a unit unknown to this BPE model (would be <unk>)")
        return ids

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """BPE ids `(T'',)` -> units `(T,)` uint16; raises on ids out of range or `<unk>`."""
        a = np.asarray(ids, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size or (a == self._unk).any()):
            raise InputError("ids", f"must be in [1, {self.vocab_size}) and not <unk> (0)")
        text = self._sp.decode(a.tolist())
        return (np.array([ord(c) for c in text], dtype=np.int64) - BPE_CHAR_OFFSET).astype(np.uint16)

    def checksum(self) -> str:
        """``sha256:<hex>`` of the sentencepiece model and k: identifies the BPE a corpus was encoded with."""

        return "sha256:" + hashlib.sha256(self.model_proto + f"|k={self.k}".encode()).hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Writes ``unit_bpe.model`` (the sentencepiece protobuf) and ``unit_bpe.json`` (format,
        k, vocab_size, checksum, units_source) into `directory`, each atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(d / BPE_MODEL_FILE, self.model_proto)
        info = {"format": BPE_FORMAT, "k": self.k, "vocab_size": self.vocab_size,
                "checksum": self.checksum(), "units_source": self.units_source}
        atomic.write_text(d / BPE_INFO_FILE, json.dumps(info, indent=2) + "\n")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> UnitBPE:
        """Reads what `save` wrote (e.g. ``OUT/models/NAME`` of another run); checks the checksum.

        Raises:
            InputError: no unit BPE model in `directory`, or its files disagree (checksum).
        """
        d = Path(directory)
        info_path, model_path = d / BPE_INFO_FILE, d / BPE_MODEL_FILE
        if not info_path.is_file() or not model_path.is_file():
            found = sorted(str(p.parent) for p in d.glob(f"models/*/{BPE_INFO_FILE}")) if d.is_dir() else []
            raise InputError(str(d), f"holds no unit BPE model ({BPE_INFO_FILE} + {BPE_MODEL_FILE}, as "
                             "saved in OUT/models/NAME by a unit_bpe stage)"
                             + (f"; this run output has {found}" if found else ""))
        info = json.loads(info_path.read_text())
        if "format" not in info and "char_offset" in info:  # saved before checksums were recorded
            return cls(model_path.read_bytes(), int(info["k"]))
        if info.get("format") != BPE_FORMAT:
            raise InputError(str(info_path), f"format is {info.get('format')!r}, not {BPE_FORMAT!r}")
        bpe = cls(model_path.read_bytes(), int(info["k"]), info.get("units_source"))
        if bpe.checksum() != info.get("checksum"):
            raise InputError(str(model_path), f"has checksum {bpe.checksum()}, but {BPE_INFO_FILE} "
                             f"records {info.get('checksum')}: the model file was changed or damaged; "
                             "copy the model directory again from the run that fitted it")
        return bpe
