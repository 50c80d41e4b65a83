"""The ``cuts`` stage: one metadata row per cut (id, timing, text, speaker, the cut as JSON).

It reads no audio. Its shards (``OUT/shards/NNNNN.cuts.arrow``) are what every later stage
reads its cuts from, so the manifest is streamed once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from speechtok.pipeline.stage import CutItem, Quarantine, StageBase


@dataclass(frozen=True, kw_only=True)
class CutsConfig:
    """Options of the cuts stage.

    Attributes:
        keep_cut_json: store the whole lhotse cut as JSON in the ``cut`` column (needed by
            stages that load audio; turn off only for metadata-only outputs).
    """

    keep_cut_json: bool = True

    def validate(self) -> None:
        """Nothing to check (kept for the config protocol)."""


def cut_row(cut: Any, *, keep_json: bool = True) -> dict[str, Any]:
    """The ``cuts`` row of a cut: a lhotse cut or its serialised dict (``cut.to_dict()``).

    Text, speaker and language come from the first supervision; ``cut`` is the cut as JSON
    with sorted keys.
    """
    d: dict[str, Any] = cut if isinstance(cut, dict) else cut.to_dict()
    sups = d.get("supervisions") or []
    sup = sups[0] if sups else {}
    rec = d.get("recording") or {}
    return {
        "id": str(d["id"]),
        "recording_id": rec.get("id", d.get("recording_id")),
        "start": float(d.get("start", 0.0)),
        "duration": float(d["duration"]),
        "sampling_rate": int(rec["sampling_rate"]) if "sampling_rate" in rec else None,
        "text": sup.get("text"),
        "speaker": sup.get("speaker"),
        "language": sup.get("language"),
        "alignment": None,
        "cut": json.dumps(d, sort_keys=True) if keep_json else None,
    }


class CutsStage(StageBase[CutsConfig]):
    """Writes the ``cuts`` group (see module docstring)."""

    type_name: ClassVar[str] = "cuts"
    kind = "cuts"
    version = "1"
    config_cls: ClassVar[type[Any]] = CutsConfig

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:
        keep = bool(self.config.keep_cut_json)
        return [cut_row(item.cut, keep_json=keep) for item in batch]
