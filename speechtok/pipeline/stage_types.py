"""The stage types a recipe can name (``type:`` of a stage), and `build_stage`, which builds a
stage from its JSON-able spec in any process (the runner, a pool worker, a Ray task).

Every built-in type is imported here by name, so a process resolves them all once it imports
this module. A stage type from outside the package is registered with `register_stage_type`
(``"package.module:ClassName"``, imported when a stage of it is first built).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from speechtok.config import build
from speechtok.errors import ConfigError
from speechtok.pipeline.stage import StageBase
from speechtok.pipeline.stages.codec import CodecStage
from speechtok.pipeline.stages.ctc_align import CTCAlignStage
from speechtok.pipeline.stages.cuts import CutsStage
from speechtok.pipeline.stages.fbank import FbankStage
from speechtok.pipeline.stages.kmeans_units import KMeansUnitsStage
from speechtok.pipeline.stages.ssl import SSLStage
from speechtok.pipeline.stages.unit_bpe import UnitBPEStage
from speechtok.pipeline.stages.whisper import WhisperStage

#: Built-in stage type -> its class.
STAGE_TYPES: dict[str, type[StageBase]] = {
    "cuts": CutsStage,
    "fbank": FbankStage,
    "kmeans_units": KMeansUnitsStage,
    "ssl": SSLStage,
    "whisper": WhisperStage,
    "codec": CodecStage,
    "ctc_align": CTCAlignStage,
    "unit_bpe": UnitBPEStage,
}

#: Stage type -> ``"package.module:ClassName"`` of a stage from outside the package.
PLUGIN_TYPES: dict[str, str] = {}


def register_stage_type(type_name: str, target: str) -> None:
    """Registers a stage type from outside the package, `target` being ``"package.module:ClassName"``."""
    module_name, _, cls_name = target.partition(":")
    if not module_name or not cls_name:
        raise ConfigError("stage type", target, "must be 'package.module:ClassName'")
    if type_name in STAGE_TYPES:
        raise ConfigError("stage type", type_name, "is a built-in stage type; register another name")
    PLUGIN_TYPES[type_name] = target


def stage_class(type_name: str) -> type[StageBase]:
    """The class of stage type `type_name` (a plugin's module is imported here, the first time)."""
    if type_name in STAGE_TYPES:
        return STAGE_TYPES[type_name]
    if type_name not in PLUGIN_TYPES:
        raise ConfigError("stage", type_name, f"must be one of {sorted([*STAGE_TYPES, *PLUGIN_TYPES])}")
    module_name, _, cls_name = PLUGIN_TYPES[type_name].partition(":")
    cls: type[StageBase] = getattr(importlib.import_module(module_name), cls_name)  # outside the package
    return cls


def build_stage(spec: Mapping[str, Any]) -> StageBase:
    """Builds a stage from its spec ``{"type", "name", "input", "config"}``."""
    cls = stage_class(str(spec["type"]))
    name = str(spec.get("name") or cls.type_name)
    config = build(cls.config_cls, spec.get("config") or {}, name)
    return cls(name=name, config=config, input_group=spec.get("input"))
