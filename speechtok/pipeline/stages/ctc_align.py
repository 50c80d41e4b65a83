"""The ``ctc_align`` stage: word alignments by CTC forced alignment (``align.NAME``).

Reads an upstream features group (the one a latent run's stage-1 encoder was trained on, e.g.
``feats.whisper``) and each cut's transcript, runs that encoder + CTC head
(`speechtok.models.ctc_align.CTCAligner`) and writes ``[{word, start, duration}]`` per
cut, the format of the cuts' ``alignment`` column, as a group of its own: adding alignments
rewrites no existing file. Spans are contiguous (gaps between CTC spikes split at their
midpoint). The encoder's weights and tokenizer enter the fingerprint. A cut without text gets
an empty alignment; one whose labels cannot fit its frames, or whose features are missing, is
quarantined (``align_failed`` / ``upstream``) with a None alignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.models.ctc_align import CTCAligner, as_alignment_column
from speechtok.pipeline.stage import CutItem, Quarantine, StageBase


@dataclass(frozen=True, kw_only=True)
class CTCAlignConfig:
    """Attributes:
    run: a ``speechtok train latent`` run directory (its ``stage1`` encoder + CTC head).
    device: ``cpu`` or ``cuda``.
    """

    run: str = ""
    device: str = "cpu"

    def validate(self) -> None:
        if not isinstance(self.run, str) or not self.run:
            raise ConfigError("run", self.run, "must name a latent training run directory")


class CTCAlignStage(StageBase[CTCAlignConfig]):
    """CTC forced word alignment over a features group (see module docstring)."""

    type_name: ClassVar[str] = "ctc_align"
    kind = "align"
    version = "1"
    config_cls: ClassVar[type[Any]] = CTCAlignConfig

    def __init__(self, *, name: str, config: CTCAlignConfig, input_group: str | None = None) -> None:
        if not input_group or not input_group.startswith("feats."):
            raise ConfigError(f"{name}.input", input_group,
                              "must name the features group the CTC encoder reads, e.g. feats.whisper")
        super().__init__(name=name, config=config, input_group=input_group)
        self._aligner: Any = None

    def aligner(self) -> Any:
        if self._aligner is None:
            self._aligner = CTCAligner(self.config.run, device=self.config.device)
            if self._aligner.feats_group != self.input_group:
                raise ConfigError(f"{self.name}.input", self.input_group,
                                  f"must be {self._aligner.feats_group!r}, the group the run was trained on")
        return self._aligner

    def model_checksum(self) -> str | None:
        return str(self.aligner().checksum())

    def group_meta_fields(self) -> dict[str, Any]:
        return {"frame_rate": float(self.aligner().frame_rate), "model_checksum": self.model_checksum()}

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        return {"id": cut_id, "alignment": None}

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:

        al = self.aligner()
        group = str(self.input_group)
        out: list[dict[str, Any] | Quarantine] = []
        for item in batch:
            feats = self.upstream_feats(item)
            if feats is None:
                out.append(Quarantine(id=item.id, reason="upstream", detail=f"no frames in {group}"))
                continue
            sups = getattr(item.cut, "supervisions", None) or []
            text = " ".join(str(s.text) for s in sups if s.text).strip()
            try:
                words = al.align(np.asarray(feats), text)
            except InputError as exc:
                out.append(Quarantine(id=item.id, reason="align_failed", detail=str(exc)))
                continue
            out.append({"id": item.id, "alignment": as_alignment_column(words)})
        return out
