"""The ``fbank`` stage: log-mel filterbank features per cut (``feats.NAME``, float16 by default).

Audio is loaded with lhotse (``cut.load_audio()``, resampled to ``sampling_rate`` when the cut's
rate differs); features come from `speechtok.features.fbank` (lhotse-compatible, batched). A cut
whose audio cannot be decoded, holds NaN/inf, gives 0 frames (``too_short``: too few samples for
one frame) or non-finite features is quarantined with its reason and gets an empty row
(0 frames), so the run goes on and rows stay aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from speechtok.errors import ConfigError
from speechtok.features.fbank import FbankConfig, compute_fbank_batch
from speechtok.pipeline.stage import CutItem, Quarantine, StageBase
from speechtok.pipeline.stages.audio import load_waves
from speechtok.pipeline.stages.base import fill_feats


@dataclass(frozen=True, kw_only=True)
class FbankStageConfig(FbankConfig):
    """`FbankConfig` as it is (every field, one default each), plus what only the stage has.

    Attributes:
        dtype: stored dtype, ``float16`` or ``float32``.
        device: ``cpu`` or ``cuda``.
    """

    dtype: str = "float16"
    device: str = "cpu"

    def validate(self) -> None:
        super().validate()
        if self.dtype not in ("float16", "float32"):
            raise ConfigError("dtype", self.dtype, "must be 'float16' or 'float32'")
        if self.sampling_rate < 1000:
            raise ConfigError("sampling_rate", self.sampling_rate, "must be >= 1000 Hz")


class FbankStage(StageBase[FbankStageConfig]):
    """Filterbank features (see module docstring)."""

    type_name: ClassVar[str] = "fbank"
    kind = "feats"
    version = "1"
    config_cls: ClassVar[type[Any]] = FbankStageConfig

    def group_meta_fields(self) -> dict[str, Any]:
        return {"frame_rate": 1.0 / self.config.frame_shift, "dim": self.config.num_mel_bins,
                "dtype": self.config.dtype}

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        return {"id": cut_id, "feats": np.zeros((0, self.config.num_mel_bins), self.config.dtype)}

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:
        cfg = self.config
        out, slots, waves = load_waves(batch, cfg.sampling_rate)
        feats = compute_fbank_batch(waves, cfg.sampling_rate, cfg,
                                    device=cfg.device) if waves else []
        # (T, D) per cut -> rows; 0 frames -> too_short, non-finite -> nan_features
        fill_feats(out, slots, feats, dtype=cfg.dtype)
        return out
