"""The ``kmeans_units`` stage: k-means units of an upstream features group (``units.NAME``).

Fit (once per output, before any shard is assigned): `speechtok.tokenizers.kmeans.fit_kmeans`
on frames sampled from the committed feature shards (``ShardFrameSource``; the corpus is never
concatenated), checkpointed in the model directory, saved as safetensors + JSON. The centroids'
checksum enters the stage fingerprint. Process: nearest centroid per frame -> ``uint16`` units,
optionally deduplicated into (units, durations) run lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechtok.errors import ConfigError, SpeechtokError
from speechtok.pipeline.stage import CutItem, FitContext, Quarantine, StageBase


@dataclass(frozen=True, kw_only=True)
class KMeansUnitsConfig:
    """Options of the k-means units stage (fit options as in `KMeansConfig`).

    Attributes:
        k: number of units (2..65535).
        iterations: Lloyd iterations. seed: seeds the frame sample and the initialisation.
        frame_budget: at most this many frames are sampled for the fit.
        spherical: cosine k-means. pca_dim: PCA before clustering (None: off).
        dedup: collapse repeated units into (units, durations).
    """

    k: int = 50
    iterations: int = 20
    seed: int = 0
    frame_budget: int = 200_000
    spherical: bool = False
    pca_dim: int | None = None
    dedup: bool = False

    def validate(self) -> None:
        self.kmeans_config().validate()

    def kmeans_config(self) -> Any:
        from speechtok.tokenizers.kmeans import KMeansConfig

        return KMeansConfig(k=self.k, iterations=self.iterations, seed=self.seed,
                            frame_budget=self.frame_budget, spherical=self.spherical,
                            pca_dim=self.pca_dim)


def dedup_units(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length: (T,) uint16 -> (units (R,) uint16, durations (R,) uint16), durations <= 65535."""
    if units.size == 0:
        return units.astype(np.uint16), np.zeros(0, np.uint16)
    change = np.flatnonzero(np.diff(units.astype(np.int64))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [units.size]]))
    vals = units[starts]
    if lengths.max() > 65535:  # split runs that overflow uint16
        reps = (lengths + 65534) // 65535
        vals = np.repeat(vals, reps)
        lengths = np.concatenate([[65535] * (r - 1) + [n - 65535 * (r - 1)]
                                  for n, r in zip(lengths, reps, strict=True)])
    return vals.astype(np.uint16), lengths.astype(np.uint16)


class GroupFrameSource:
    """A k-means `FrameSource` over the committed shards of a ``feats.*`` group, in shard order.

    Frame counts come from the list offsets (no payload read); iteration yields one
    ``(T, D)`` memory-mapped view per row (0-frame rows of quarantined cuts are skipped).
    """

    def __init__(self, out_dir: Path, group: str) -> None:
        from speechtok.pipeline.shard_index import ShardIndex

        self.out_dir, self.group = Path(out_dir), group
        self.index = ShardIndex.load(out_dir)
        self.shards = self.index.committed_shards(group)

    def _files(self) -> Any:
        from speechtok.pipeline.shard_file import ShardFile
        from speechtok.pipeline.shard_index import shard_path

        for s in self.shards:
            entry = self.index.committed(self.group, s)
            if entry is None:
                continue
            sf = ShardFile(shard_path(self.out_dir, s, self.group), entry, group=self.group,
                           checksum=False)
            try:
                yield sf
            finally:
                sf.close()

    def total_frames(self) -> int:
        return int(sum(int(sf.lengths("feats").sum()) for sf in self._files()))

    def __iter__(self) -> Any:
        for sf in self._files():
            for b in range(len(sf.batch_starts) - 1):
                col = sf.list_column(b, "feats")
                for j in range(len(col.offsets) - 1):
                    row = col.row(j)
                    if row is not None and len(row):
                        yield row

    def fingerprint(self) -> str | None:
        return self.index.fingerprint_of(self.group)


class KMeansUnitsStage(StageBase):
    """k-means units over an upstream ``feats.*`` group (see module docstring)."""

    type_name: ClassVar[str] = "kmeans_units"
    kind = "units"
    version = "1"
    config_cls: ClassVar[type[Any]] = KMeansUnitsConfig

    def __init__(self, *, name: str, config: Any, input_group: str | None = None) -> None:
        if not input_group or not input_group.startswith("feats."):
            raise ConfigError(f"{name}.input", input_group,
                              "must name a features group such as feats.fbank")
        super().__init__(name=name, config=config, input_group=input_group)
        self._model: Any = None

    def needs_fit(self) -> bool:
        return True

    def fit(self, ctx: FitContext) -> None:
        from speechtok.errors import InputError
        from speechtok.tokenizers.kmeans import fit_kmeans
        from speechtok.tokenizers.kmeans_sampling import ShardFrameSource

        try:
            source: Any = ShardFrameSource(ctx.out_dir, str(self.input_group))
        except InputError:  # no ShardDataset in this tree: read the shard files directly
            source = GroupFrameSource(ctx.out_dir, str(self.input_group))
        model = fit_kmeans(source, self.config.kmeans_config(),
                           checkpoint_dir=ctx.model_dir / "checkpoint")
        model.save(ctx.model_dir)
        self._model = model

    def load_model(self, model_dir: Path) -> None:
        from speechtok.tokenizers.kmeans import KMeansModel

        self._model = KMeansModel.load(model_dir)

    def model_checksum(self) -> str | None:
        return None if self._model is None else str(self._model.checksum())

    def group_meta_fields(self) -> dict[str, Any]:
        return {"vocab_size": self.config.k, "model_checksum": self.model_checksum()}

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        empty = np.zeros(0, np.uint16)
        return {"id": cut_id, "units": empty, "durations": empty if self.config.dedup else None}

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:
        if self._model is None:
            raise SpeechtokError(f"stage {self.name!r} has no centroids loaded; fit it first")
        group = str(self.input_group)
        out: list[dict[str, Any] | Quarantine] = []
        for item in batch:
            feats = self.upstream_feats(item)
            if feats is None:
                out.append(Quarantine(id=item.id, reason="upstream",
                                      detail=f"no frames in {group} (quarantined upstream)"))
                continue
            units = self._model.assign(np.asarray(feats))  # (T,) uint16
            if self.config.dedup:
                vals, durs = dedup_units(units)
                out.append({"id": item.id, "units": vals, "durations": durs})
            else:
                out.append({"id": item.id, "units": units, "durations": None})
        return out
