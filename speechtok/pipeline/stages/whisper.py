"""The ``whisper`` stage: Whisper encoder states per cut (``feats.NAME``, float16, 50 Hz).

Wraps `speechtok.features.whisper_states.WhisperEncoderStates`: a transformers Whisper
directory (any encoder layer) or a CTranslate2 one (final states; ``backend: ct2``). Cuts are
resampled to 16 kHz; a cut of S samples gives ``ceil(S / 320)`` frames (30 s windows, see that
module). The model checksum enters the fingerprint and the group metadata; bad cuts are
quarantined as in the ``ssl`` stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from speechtok.errors import ConfigError
from speechtok.pipeline.stage import CutItem
from speechtok.pipeline.stages.audio import Result, load_waves
from speechtok.pipeline.stages.base import (
    FeatsStageBase,
    check_types,
    fill_feats,
    run_guarded,
)

_BACKENDS = {"auto": "auto", "transformers": "transformers", "ct2": "ctranslate2",
             "ctranslate2": "ctranslate2"}


@dataclass(frozen=True, kw_only=True)
class WhisperStageConfig:
    """Options of the whisper stage (see `speechtok.features.whisper_states.WhisperStatesConfig`).

    Attributes:
        model: local Whisper directory (transformers, or CTranslate2 with ``model.bin``).
        backend: ``auto`` (from the directory's files), ``transformers`` or ``ct2``.
        device: ``cpu`` or ``cuda``.
        layer: transformers only: encoder hidden-state index; None = final output.
        batch_windows: 30 s windows per encoder call. threads: CTranslate2 threads (0 = default).
        compute_type: CTranslate2 compute type. dtype: stored dtype (``float16``|``float32``).
    """

    model: str = ""
    backend: str = "auto"
    device: str = "cpu"
    layer: int | None = None
    batch_windows: int = 4
    threads: int = 0
    compute_type: str = "default"
    dtype: str = "float16"

    def validate(self) -> None:
        check_types(self, ints=("layer", "batch_windows", "threads"),
                    strs=("model", "backend", "device", "compute_type", "dtype"))
        if self.backend not in _BACKENDS:
            raise ConfigError("backend", self.backend, f"must be one of {sorted(_BACKENDS)}")
        self.features_config().validate()

    def features_config(self) -> Any:
        from speechtok.features.whisper_states import WhisperStatesConfig

        return WhisperStatesConfig(model=self.model, backend=_BACKENDS.get(self.backend, "auto"),
                                   device=self.device, layer=self.layer,
                                   batch_windows=self.batch_windows, threads=self.threads,
                                   compute_type=self.compute_type, dtype=self.dtype)


class WhisperStage(FeatsStageBase):
    """Whisper encoder states (see module docstring)."""

    type_name: ClassVar[str] = "whisper"
    version = "1"
    config_cls: ClassVar[type[Any]] = WhisperStageConfig

    def _load(self) -> Any:
        from speechtok.features.whisper_states import WhisperEncoderStates

        c = self.config.features_config()
        return WhisperEncoderStates(c.model, device=c.device, backend=c.backend, layer=c.layer,
                                    batch_windows=c.batch_windows, threads=c.threads,
                                    compute_type=c.compute_type, dtype=c.dtype)

    def _meta_fields(self, obj: Any) -> dict[str, Any]:
        return dict(obj.group_meta_fields())

    def process(self, batch: Sequence[CutItem]) -> list[Result]:
        from speechtok.features.whisper_states import SAMPLING_RATE

        ex = self.model()
        out, slots, waves = load_waves(batch, SAMPLING_RATE)
        feats = run_guarded(lambda ws: ex.extract_batch(ws, SAMPLING_RATE), waves,
                            [batch[s].id for s in slots])
        fill_feats(out, slots, feats, dtype=self.config.dtype)
        return out
