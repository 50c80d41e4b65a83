"""What features a fitted tokenizer expects: the feature fingerprint saved with a k-means model.

A k-means model fitted in one run may be applied to another corpus only when that corpus's
features were made the same way. `FeatureSpec` names the fields that decide this (feature type,
layer, sample rate, frame rate, dimension, normalisation, the feature model's checksum) plus the
PCA the k-means model applies itself; `FeatureSpec.mismatch` names the first field that differs.

A model fitted by the ``kmeans_units`` stage records the spec of its input group; centroids
imported from ``.npy`` (fairseq k-means, converted) get the spec given explicitly by the user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from speechtok.errors import ConfigError

#: fields compared between a model's spec and the features it is applied to, in this order.
CHECKED = ("feature_type", "dim", "frame_rate", "sample_rate", "layer", "normalize", "model_checksum")


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """The features a tokenizer was fitted on (or is applied to).

    Attributes:
        feature_type: the stage type that made them: ``fbank``, ``ssl``, ``whisper``, ...
        dim: feature dimension D (before the model's own PCA).
        frame_rate: frames per second (None: not recorded).
        sample_rate: audio rate the features were computed at, Hz (None: not recorded).
        layer: model layer (SSL / Whisper), None for the final output or for fbank.
        normalize: feature normalisation of the extractor (None: the extractor's default).
        model_checksum: checksum of the feature model (None for fbank).
        pca_dim: PCA applied by the k-means model itself (recorded, not compared: the
            features are given to the model before it).
    """

    feature_type: str
    dim: int
    frame_rate: float | None = None
    sample_rate: int | None = None
    layer: int | None = None
    normalize: bool | None = None
    model_checksum: str | None = None
    pca_dim: int | None = None

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        if not self.feature_type:
            raise ConfigError("features.feature_type", self.feature_type,
                              "must name the feature stage type (fbank, ssl, whisper)")
        if int(self.dim) < 1:
            raise ConfigError("features.dim", self.dim, "must be >= 1")
        if self.frame_rate is not None and float(self.frame_rate) <= 0:
            raise ConfigError("features.frame_rate", self.frame_rate, "must be > 0 or null")
        if self.sample_rate is not None and int(self.sample_rate) < 1000:
            raise ConfigError("features.sample_rate", self.sample_rate, "must be >= 1000 Hz or null")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "features") -> FeatureSpec:
        """Builds and validates a spec; unknown keys are refused (naming them)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", values[unknown[0]],
                              f"is not a feature-spec field (fields: {', '.join(sorted(known))})")
        for need in ("feature_type", "dim"):
            if values.get(need) is None:
                raise ConfigError(f"{where}.{need}", None, "must be given")
        spec = cls(**dict(values))
        spec.validate()
        return spec

    def mismatch(self, other: FeatureSpec) -> tuple[str, Any, Any] | None:
        """The first field of `CHECKED` whose values differ, as (field, self's, other's), or None.

        A field that one side does not record (None) is not compared, except `layer`,
        `normalize` and `model_checksum`, where None is a value (final layer, default
        normalisation, no model). Frame rates are compared to 1e-6 relative.
        """
        for name in CHECKED:
            a, b = getattr(self, name), getattr(other, name)
            if name in ("frame_rate", "sample_rate") and (a is None or b is None):
                continue
            if name == "frame_rate":
                if abs(float(a) - float(b)) > 1e-6 * max(abs(float(a)), abs(float(b))):
                    return name, a, b
            elif a != b:
                return name, a, b
        return None


def feature_spec_from_group(stage: str, config: Mapping[str, Any], *, dim: int | None,
                            frame_rate: float | None, model_checksum: str | None) -> FeatureSpec:
    """The spec of a features group, from its shard metadata (stage type, config, dim...).

    Args:
        stage: stage type that wrote the group (``fbank``, ``ssl``, ``whisper``...).
        config: that stage's config as recorded in the schema metadata.
        dim, frame_rate, model_checksum: the group's metadata fields.
    """
    if dim is None:
        raise ConfigError("dim", dim, f"must be recorded in the metadata of the {stage} features group")
    sample_rate = config.get("sampling_rate", config.get("sample_rate"))
    if sample_rate is None and stage in ("whisper", "ssl"):
        sample_rate = 16000  # both stages resample every cut to their model's 16 kHz
    return FeatureSpec(feature_type=str(stage), dim=int(dim),
                       frame_rate=None if frame_rate is None else float(frame_rate),
                       sample_rate=None if sample_rate is None else int(sample_rate),
                       layer=config.get("layer"), normalize=config.get("normalize"),
                       model_checksum=model_checksum)


def check_spec(model_spec: FeatureSpec, feats_spec: FeatureSpec, *, model: str, group: str) -> None:
    """Refuses to apply a model fitted on `model_spec` features to `feats_spec` features.

    Raises:
        ConfigError: naming the first differing field, both values, and what to do.
    """
    diff = model_spec.mismatch(feats_spec)
    if diff is not None:
        name, want, have = diff
        raise ConfigError(
            f"{group}.{name}", have,
            f"must equal {want!r}, the {name} of the features the model {model} was fitted on "
            f"(build {group} with the same feature stage, or fit a new model)")
