"""The ``ssl`` stage: one layer of a self-supervised speech model per cut (``feats.NAME``).

Wraps `speechtok.features.ssl.SSLFeatureExtractor` (HuBERT, WavLM, wav2vec2, data2vec-audio from
a local `transformers` directory). One stage writes one layer (``layer``), float16 by default, at
the model's frame rate (50 Hz for 16 kHz models); for several layers add one stage per layer
(each with its own name), so that every group is a plain ``(T, D)`` feature matrix a k-means
stage can read. Cuts are resampled (lhotse ``cut.resample``) to the model's sampling rate.

The model's checksum (sha256 over its weight and config files) enters the stage fingerprint and
the group metadata. The runner process only probes the model for its metadata (loads it, reads
frame rate, dim and checksum, drops it); workers load it once per process and keep it.

Bad cuts (undecodable audio, 0 samples, NaN/inf samples, too short for one frame, non-finite
features, a model error on that cut alone) are quarantined and get an empty row (0 frames).
The shared per-cut model-error handling is `speechtok.pipeline.stages.base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from speechtok.errors import ConfigError
from speechtok.pipeline.stage import CutItem
from speechtok.pipeline.stages.audio import Result, load_waves
from speechtok.pipeline.stages.base import FeatsStageBase, check_types, fill_feats, run_guarded


@dataclass(frozen=True, kw_only=True)
class SSLStageConfig:
    """Options of the ssl stage (see `speechtok.features.ssl.SSLConfig`).

    Attributes:
        model: local `transformers` model directory (HuBERT/WavLM/wav2vec2/data2vec-audio).
        layer: hidden-state index written by this stage (0 = transformer input, k = output of
            transformer layer k); one stage per layer.
        device: ``cpu`` or ``cuda``.
        dtype: stored dtype, ``float16`` (default) or ``float32``.
        normalize, batching, max_batch_seconds, chunk_seconds, overlap_seconds: as in `SSLConfig`.
    """

    model: str = ""
    layer: int = 6
    device: str = "cpu"
    dtype: str = "float16"
    normalize: bool | None = None
    batching: str = "auto"
    max_batch_seconds: float = 160.0
    chunk_seconds: float | None = 60.0
    overlap_seconds: float = 2.0

    def validate(self) -> None:
        check_types(self, ints=("layer",), floats=("max_batch_seconds", "chunk_seconds",
                                                   "overlap_seconds"),
                    strs=("model", "device", "dtype", "batching"))
        if self.layer < 0:
            raise ConfigError("layer", self.layer, "must be >= 0")
        self.features_config().validate()

    def features_config(self) -> Any:
        from speechtok.features.ssl import SSLConfig

        return SSLConfig(model=self.model, layers=(self.layer,), device=self.device,
                         normalize=self.normalize, batching=self.batching,
                         max_batch_seconds=self.max_batch_seconds,
                         chunk_seconds=self.chunk_seconds, overlap_seconds=self.overlap_seconds,
                         dtype=self.dtype)


class SSLStage(FeatsStageBase):
    """SSL layer features (see module docstring)."""

    type_name: ClassVar[str] = "ssl"
    version = "1"
    config_cls: ClassVar[type[Any]] = SSLStageConfig

    def _load(self) -> Any:
        from speechtok.features.ssl import SSLFeatureExtractor

        c = self.config
        return SSLFeatureExtractor(c.model, layers=(c.layer,), device=c.device,
                                   normalize=c.normalize, batching=c.batching,
                                   max_batch_seconds=c.max_batch_seconds,
                                   chunk_seconds=c.chunk_seconds,
                                   overlap_seconds=c.overlap_seconds, dtype=c.dtype)

    def _meta_fields(self, obj: Any) -> dict[str, Any]:
        return dict(obj.group_meta_fields(self.config.layer))

    def process(self, batch: Sequence[CutItem]) -> list[Result]:
        ex = self.model()
        out, slots, waves = load_waves(batch, ex.sampling_rate)
        layer = self.config.layer
        feats = run_guarded(lambda ws: ex.extract_batch(ws, ex.sampling_rate)[layer], waves,
                            [batch[s].id for s in slots])
        fill_feats(out, slots, feats, dtype=self.config.dtype)
        return out
