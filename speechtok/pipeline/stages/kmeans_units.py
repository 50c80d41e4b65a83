"""The ``kmeans_units`` stage: k-means units of an upstream features group (``units.NAME``).

Fit (once per output, before any shard is assigned): `speechtok.tokenizers.kmeans.fit_kmeans`
on frames sampled from the committed feature shards (``ShardFrameSource``; the corpus is never
concatenated), checkpointed in the model directory, saved as safetensors + JSON together with the
input group's `FeatureSpec` (feature type, layer, sample rate, frame rate, dim, normalisation,
feature model; PCA). The centroids' checksum enters the stage fingerprint and the units group's
``model_checksum``. Process: nearest centroid per frame -> ``uint16`` units, optionally
deduplicated into (units, durations) run lengths.

Fit once, use everywhere: ``model: PATH`` applies a saved model instead of fitting (a
`KMeansModel.save` directory such as ``OUT/models/NAME`` of another run, or a ``.npy`` of
centroids with ``features: {feature_type, dim, ...}`` given explicitly). Its recorded spec must
match the input group's; a mismatch is refused naming the field. The model is copied into this
run's ``models/NAME`` with the same checksum, so two corpora tokenized by one model show the same
``model_checksum`` in ``speechtok inspect``. The fit options (k, iterations, ...) are then unused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechtok.config import expand, fingerprint_of
from speechtok.errors import ConfigError, InputError, SpeechtokError
from speechtok.features.checksum import file_sha256
from speechtok.pipeline.stage import CutItem, FitContext, Quarantine, StageBase
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.feature_spec import FeatureSpec, check_spec, feature_spec_from_group
from speechtok.tokenizers.kmeans import KMeansConfig, KMeansModel, fit_kmeans
from speechtok.tokenizers.kmeans_import import load_kmeans
from speechtok.tokenizers.kmeans_sampling import ShardFrameSource
from speechtok.tokenizers.units import dedup


@dataclass(frozen=True, kw_only=True)
class KMeansUnitsConfig(KMeansConfig):
    """`KMeansConfig` as it is (all its fields: a recipe can set ``restarts``, ``metric``,
    ``init``...) with the library's defaults, plus what only the stage has. ``k`` alone has a
    default here (50; the library has none), so that a recipe that applies a saved model
    (``model:``, whose k is the model's) need not repeat it.

    Attributes:
        dedup: collapse repeated units into (units, durations).
        model: apply this saved model instead of fitting (a `KMeansModel.save` directory, e.g.
            ``OUT/models/NAME`` of another run, or a ``.npy`` of centroids); ``${shared}`` expands.
        features: the `FeatureSpec` fields of the features a ``.npy`` model was fitted on
            (feature_type, dim, frame_rate, sample_rate, layer, normalize, model_checksum);
            needed for ``.npy``, optional for a directory (must then agree with its record).
    """

    k: int = 50
    dedup: bool = False
    model: str | None = None
    features: dict[str, Any] | None = None

    def validate(self) -> None:
        super().validate()
        if self.features is not None:
            if self.model is None:
                raise ConfigError("features", self.features, "may be given only with `model` (an imported model)")
            self.feature_spec()

    def feature_spec(self) -> Any:
        """`features` as a validated `FeatureSpec`, or None."""

        return None if self.features is None else FeatureSpec.from_dict(self.features)

    def model_path(self) -> Path | None:
        """`model` with ``${shared}``/``${root}`` expanded, or None."""

        return None if self.model is None else Path(str(expand(self.model)))

    def kmeans_config(self) -> KMeansConfig:
        """The library part alone (what the fitted model records)."""
        return KMeansConfig(**{f.name: getattr(self, f.name) for f in fields(KMeansConfig)})


class KMeansUnitsStage(StageBase[KMeansUnitsConfig]):
    """k-means units over an upstream ``feats.*`` group (see module docstring)."""

    type_name: ClassVar[str] = "kmeans_units"
    kind = "units"
    version = "1"
    config_cls: ClassVar[type[Any]] = KMeansUnitsConfig

    def __init__(self, *, name: str, config: KMeansUnitsConfig, input_group: str | None = None) -> None:
        if not input_group or not input_group.startswith("feats."):
            raise ConfigError(f"{name}.input", input_group,
                              "must name a features group such as feats.fbank")
        super().__init__(name=name, config=config, input_group=input_group)
        self._model: Any = None

    def needs_fit(self) -> bool:
        return True

    def fit_fingerprint(self, upstream: str | None) -> str:
        """As `StageBase.fit_fingerprint`, plus the checksum of an applied model (``model:``),
        so that a changed model file at the same path is copied again."""

        base = super().fit_fingerprint(upstream)
        path = self.config.model_path()
        return base if path is None else fingerprint_of({"fit": base, "model": source_checksum(path)})

    def input_spec(self, out_dir: Path) -> Any:
        """The `FeatureSpec` of the input group, from its committed shards' metadata."""

        group = str(self.input_group)
        meta = ShardDataset(out_dir, groups=(group,)).meta(group)
        return feature_spec_from_group(meta.stage, meta.config or {}, dim=meta.dim,
                                       frame_rate=meta.frame_rate, model_checksum=meta.model_checksum)

    def fit(self, ctx: FitContext) -> None:
        spec = self.input_spec(ctx.out_dir)
        if self.config.model is not None:
            self._model = apply_saved_model(self.config, spec, group=str(self.input_group))
            self._model.save(ctx.model_dir)
            return
        source = ShardFrameSource(ctx.out_dir, str(self.input_group))
        model = fit_kmeans(source, self.config.kmeans_config(),
                           checkpoint_dir=ctx.model_dir / "checkpoint")
        model.feature_spec = dataclasses.replace(spec, pca_dim=self.config.pca_dim).to_dict()
        model.save(ctx.model_dir)
        self._model = model

    def load_model(self, model_dir: Path) -> None:

        self._model = KMeansModel.load(model_dir)

    def model_checksum(self) -> str | None:
        return None if self._model is None else str(self._model.checksum())

    def group_meta_fields(self) -> dict[str, Any]:
        k = self.config.k if self._model is None else self._model.k
        return {"vocab_size": k, "model_checksum": self.model_checksum()}

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
                vals, durs = dedup(units)
                out.append({"id": item.id, "units": vals, "durations": durs})
            else:
                out.append({"id": item.id, "units": units, "durations": None})
        return out


def source_checksum(path: Path) -> str:
    """Identity of a model to apply: the recorded checksum of a model directory, or the sha256
    of a ``.npy`` file (read in 1 MiB blocks)."""

    if (path / "kmeans.json").is_file():
        return str(json.loads((path / "kmeans.json").read_text()).get("checksum"))
    if path.is_file():
        return "sha256:" + file_sha256(path)
    found = sorted(str(m.parent) for m in (path / "models").glob("*/kmeans.json")) if path.is_dir() else []
    raise InputError(str(path), "model: no k-means model here (a KMeansModel.save directory such as "
                     "OUT/models/NAME of another run, or a .npy of centroids)"
                     + (f"; this run output has {found}" if found else ""))


def apply_saved_model(config: KMeansUnitsConfig, spec: Any, *, group: str) -> Any:
    """Loads `config.model` and checks that it was fitted on features like `spec` (the input
    group's `FeatureSpec`).

    Raises:
        ConfigError: the model records no spec and none is given, or a field differs (named).
    """

    path = config.model_path()
    if path is None:
        raise ConfigError("model", None, "must name a saved k-means model to apply")
    model = load_kmeans(path, config.feature_spec(), spherical=config.spherical)
    if model.feature_spec is None:
        raise ConfigError("features", None, f"must be given: the model {path} records no feature spec "
                          f"(saved before specs were recorded); e.g. features: "
                          f"{{feature_type: {spec.feature_type}, dim: {spec.dim}}}")
    check_spec(FeatureSpec.from_dict(model.feature_spec), spec, model=str(path), group=group)
    return model
