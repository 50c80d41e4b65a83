"""The ``ssl`` stage: one layer of a self-supervised speech model per cut (``feats.NAME``).

Wraps `speechtok.features.ssl.SSLFeatureExtractor` (HuBERT, WavLM, wav2vec2, data2vec-audio from
a local `transformers` directory; with ``backend: fairseq2``, wav2vec 2.0 / w2v-BERT from a local
fairseq2 asset card and checkpoint, `speechtok.features.ssl_fairseq2`). One stage writes one layer
(``layer``), float16 by default, at the model's frame rate (50 Hz for 16 kHz models); for several
layers add one stage per layer (each with its own name), so that every group is a plain ``(T, D)``
feature matrix a k-means stage can read. Cuts are resampled (lhotse ``cut.resample``) to the
model's sampling rate.

The model's checksum (sha256 over its weight and config files; fairseq2: over its asset card and
checkpoint) enters the stage fingerprint and the group metadata, and so does the backend: shards
written through one backend are never reused for the other (``backend: transformers``, the
default, is left out of the fingerprint, so shards written before the option existed stay
valid). The runner process only probes the model for its metadata (loads it, reads frame rate,
dim and checksum, drops it); workers load it once per process and keep it.

Bad cuts (undecodable audio, 0 samples, NaN/inf samples, too short for one frame, non-finite
features, a model error on that cut alone) are quarantined and get an empty row (0 frames).
The shared per-cut model-error handling is `speechtok.pipeline.stages.base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from speechtok.config import to_json
from speechtok.errors import ConfigError
from speechtok.features.ssl import SSLConfig, SSLFeatureExtractor
from speechtok.pipeline.stage import CutItem
from speechtok.pipeline.stages.audio import Result, load_waves
from speechtok.pipeline.stages.base import FeatsStageBase, fill_feats, run_guarded


class SSLStage(FeatsStageBase[SSLConfig]):
    """SSL layer features (see module docstring); the config is `SSLConfig` as it is, with
    exactly one layer (``layers: [6]``)."""

    type_name: ClassVar[str] = "ssl"
    version = "1"
    config_cls: ClassVar[type[Any]] = SSLConfig

    def __init__(self, *, name: str, config: SSLConfig, input_group: str | None = None) -> None:
        if len(config.layers) != 1:
            raise ConfigError(f"{name}.layers", list(config.layers),
                              "must hold exactly one layer (add one ssl stage per layer)")
        super().__init__(name=name, config=config, input_group=input_group)

    @property
    def layer(self) -> int:
        return int(self.config.layers[0])

    def fingerprint_config(self) -> Any:
        """The config's JSON, without ``backend`` when it is the default (``transformers``)."""
        cfg = to_json(self.config)
        if cfg.get("backend") == SSLConfig.backend:
            del cfg["backend"]
        return cfg

    def _load(self) -> SSLFeatureExtractor:
        return SSLFeatureExtractor(self.config)

    def _meta_fields(self, obj: Any) -> dict[str, Any]:
        return dict(obj.group_meta_fields(self.layer))

    def process(self, batch: Sequence[CutItem]) -> list[Result]:
        ex = self.model()
        out, slots, waves = load_waves(batch, ex.sampling_rate)
        layer = self.layer
        feats = run_guarded(lambda ws: ex.extract_batch(ws, ex.sampling_rate)[layer], waves,
                            [batch[s].id for s in slots])
        fill_feats(out, slots, feats, dtype=self.config.dtype)
        return out
