"""The ``whisper`` stage: Whisper encoder states per cut (``feats.NAME``, float16, 50 Hz).

Wraps `speechtok.features.whisper_states.WhisperEncoderStates`: a transformers Whisper
directory (any encoder layer) or a CTranslate2 one (final states; ``backend: ctranslate2``). Cuts are
resampled to 16 kHz; a cut of S samples gives ``ceil(S / 320)`` frames (30 s windows, see that
module). The model checksum enters the fingerprint and the group metadata; bad cuts are
quarantined as in the ``ssl`` stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from speechtok.features.whisper_states import (
    SAMPLING_RATE,
    WhisperEncoderStates,
    WhisperStatesConfig,
)
from speechtok.pipeline.stage import CutItem
from speechtok.pipeline.stages.audio import Result, load_waves
from speechtok.pipeline.stages.base import FeatsStageBase, fill_feats, run_guarded


class WhisperStage(FeatsStageBase[WhisperStatesConfig]):
    """Whisper encoder states (see module docstring); the config is `WhisperStatesConfig`."""

    type_name: ClassVar[str] = "whisper"
    version = "1"
    config_cls: ClassVar[type[Any]] = WhisperStatesConfig

    def _load(self) -> WhisperEncoderStates:
        return WhisperEncoderStates(self.config)

    def _meta_fields(self, obj: Any) -> dict[str, Any]:
        return dict(obj.group_meta_fields())

    def process(self, batch: Sequence[CutItem]) -> list[Result]:
        ex = self.model()
        out, slots, waves = load_waves(batch, SAMPLING_RATE)
        feats = run_guarded(lambda ws: ex.extract_batch(ws, SAMPLING_RATE), waves,
                            [batch[s].id for s in slots])
        fill_feats(out, slots, feats, dtype=self.config.dtype)
        return out
