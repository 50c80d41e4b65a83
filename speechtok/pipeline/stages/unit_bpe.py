"""The ``unit_bpe`` stage: sentencepiece BPE over an upstream units group (``units.NAME``).

Fit (once per output, after every shard of the input group is committed): `UnitBPE.train` on
the input group's unit sequences (the first `max_sequences` rows in shard order, quarantined
rows left out), saved into ``OUT/models/NAME`` (``unit_bpe.model`` + ``unit_bpe.json``) with a
record of the units it was fitted on: the input group, its k and the checksum of the k-means
model that made them. Process: each cut's units ``(T,)`` -> BPE ids ``(T'',)`` uint16 in
``[1, vocab_size)``. The group records ``vocab_size`` (the BPE's) and ``model_checksum`` (the
BPE's `UnitBPE.checksum`), so `speechtok inspect` shows which BPE a corpus was encoded with.

Fit once, use everywhere: ``model: PATH`` applies a saved unit BPE (``OUT/models/NAME`` of
another run, or any `UnitBPE.save` directory) without refitting. The input group must hold
units of the same k-means model (its ``model_checksum``) and the same k as the BPE was fitted
on; a mismatch is refused naming the field. The model is copied into this run's
``models/NAME`` with the same checksum. The fit options (vocab_size, ...) are then unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechtok.config import expand, fingerprint_of
from speechtok.errors import ConfigError, SpeechtokError, check_at_least
from speechtok.pipeline.stage import CutItem, FitContext, Quarantine, StageBase
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.units import UnitBPE

#: ids are stored as uint16
MAX_BPE_VOCAB = 65536


@dataclass(frozen=True, kw_only=True)
class UnitBPEConfig:
    """Options of the unit BPE stage.

    Attributes:
        vocab_size: BPE vocabulary: ``<unk>``, the k units and the merges (> k + 1, <= 65536).
        max_piece_length: the most units one BPE token may join.
        max_sequences: the fit reads at most this many unit sequences (bounds its memory).
        model: apply this saved unit BPE instead of fitting (``OUT/models/NAME`` of another run,
            or a `UnitBPE.save` directory); ``${shared}`` expands.
    """

    vocab_size: int = 1000
    max_piece_length: int = 16
    max_sequences: int = 100_000
    model: str | None = None

    def validate(self) -> None:
        if not 3 <= self.vocab_size <= MAX_BPE_VOCAB:
            raise ConfigError("vocab_size", self.vocab_size,
                              f"must be in [3, {MAX_BPE_VOCAB}] (ids are stored as uint16)")
        check_at_least(1, max_piece_length=self.max_piece_length, max_sequences=self.max_sequences)

    def model_path(self) -> Path | None:
        """`model` with ``${shared}``/``${root}`` expanded, or None."""

        return None if self.model is None else Path(str(expand(self.model)))


def check_units_source(bpe: Any, meta: Any, *, group: str, model: Path) -> None:
    """Refuses to apply `bpe` to the units group with `GroupMeta` `meta` unless they come from
    the k-means model (checksum) and k that the BPE was fitted on.

    Raises:
        ConfigError: field ``GROUP.model_checksum`` or ``GROUP.vocab_size``, naming both values.
    """
    src = bpe.units_source or {}
    if meta.vocab_size != bpe.k:
        raise ConfigError(f"{group}.vocab_size", meta.vocab_size,
                          f"must equal k={bpe.k}, the number of units the unit BPE {model} was "
                          "fitted on")
    want = src.get("model_checksum")
    if want is not None and meta.model_checksum != want:
        raise ConfigError(
            f"{group}.model_checksum", meta.model_checksum,
            f"must equal {want!r}, the k-means model whose units the unit BPE {model} was fitted "
            f"on (tokenize this corpus with that k-means model: `model: "
            f"RUN/models/NAME` in its kmeans_units stage)")


class UnitBPEStage(StageBase[UnitBPEConfig]):
    """Unit BPE over an upstream ``units.*`` group (see module docstring)."""

    type_name: ClassVar[str] = "unit_bpe"
    kind = "units"
    version = "1"
    config_cls: ClassVar[type[Any]] = UnitBPEConfig

    def __init__(self, *, name: str, config: UnitBPEConfig, input_group: str | None = None) -> None:
        if not input_group or not input_group.startswith("units."):
            raise ConfigError(f"{name}.input", input_group,
                              "must name a units group such as units.km")
        super().__init__(name=name, config=config, input_group=input_group)
        self._bpe: Any = None

    def needs_fit(self) -> bool:
        return True

    def fit_fingerprint(self, upstream: str | None) -> str:
        """As `StageBase.fit_fingerprint`, plus the recorded checksum of an applied model."""

        base = super().fit_fingerprint(upstream)
        path = self.config.model_path()
        return base if path is None else fingerprint_of(
            {"fit": base, "model": UnitBPE.load(path).checksum()})

    def fit(self, ctx: FitContext) -> None:

        group = str(self.input_group)
        ds = ShardDataset(ctx.out_dir, groups=(group,))
        meta = ds.meta(group)
        path = self.config.model_path()
        if path is not None:
            bpe = UnitBPE.load(path)
            check_units_source(bpe, meta, group=group, model=path)
        else:
            if not meta.vocab_size:
                raise ConfigError(f"{group}.vocab_size", meta.vocab_size,
                                  "must be recorded (the number of units) to fit a unit BPE")
            rows = (np.asarray(r[group]) for r in ds)
            seqs = islice((u for u in rows if len(u)), self.config.max_sequences)  # (T_i,)
            bpe = UnitBPE.train(seqs, k=int(meta.vocab_size), vocab_size=self.config.vocab_size,
                                max_piece_length=self.config.max_piece_length)
            bpe.units_source = {"group": group, "model_checksum": meta.model_checksum,
                                "k": int(meta.vocab_size)}
        if bpe.vocab_size > MAX_BPE_VOCAB:
            raise ConfigError(f"{self.name}.vocab_size", bpe.vocab_size,
                              f"must be <= {MAX_BPE_VOCAB} (ids are stored as uint16)")
        bpe.save(ctx.model_dir)
        self._bpe = bpe

    def load_model(self, model_dir: Path) -> None:

        self._bpe = UnitBPE.load(model_dir)

    def model_checksum(self) -> str | None:
        return None if self._bpe is None else str(self._bpe.checksum())

    def group_meta_fields(self) -> dict[str, Any]:
        vocab = self.config.vocab_size if self._bpe is None else self._bpe.vocab_size
        return {"vocab_size": vocab, "model_checksum": self.model_checksum()}

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        return {"id": cut_id, "units": np.zeros(0, np.uint16), "durations": None}

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:
        if self._bpe is None:
            raise SpeechtokError(f"stage {self.name!r} has no unit BPE loaded; fit it first")
        group = str(self.input_group)
        out: list[dict[str, Any] | Quarantine] = []
        for item in batch:
            up = item.upstream.get(group)
            units = None if up is None else up.get("units")
            if units is None or len(units) == 0:
                out.append(Quarantine(id=item.id, reason="upstream",
                                      detail=f"no units in {group} (quarantined upstream)"))
                continue
            ids = self._bpe.encode(np.asarray(units))  # (T'',) int32 in [1, vocab_size)
            out.append({"id": item.id, "units": ids.astype(np.uint16), "durations": None})
        return out
