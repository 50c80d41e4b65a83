"""The `Stage` protocol: one named, versioned, fingerprinted step over batches of cuts.

A stage turns a batch of cuts (plus the rows that upstream stages committed for them) into one
row per cut of its field group (``feats.fbank``, ``units.km50``, ...), or a `Quarantine` record
for a cut it cannot use. Stages are built from a JSON-able spec (type, name, config, model
directory), so that worker processes and Ray tasks rebuild them without pickling objects.

Fingerprint of a stage = sha256 over canonical JSON of (upstream fingerprint, stage type, stage
name, stage version, full config, model/centroid checksum). Two runs whose fingerprints match
wrote byte-identical shards; a committed group whose fingerprint differs is never mixed with
new shards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from speechtok.config import fingerprint_of, to_json
from speechtok.errors import BugError


class CutItem:
    """One cut handed to `Stage.process`.

    Attributes:
        cut: the lhotse cut (``MonoCut``); ``cut.load_audio()`` gives float32 ``(1, S)``.
            Built on first access from ``cut_json`` when given that way (stages that only read
            upstream rows never pay for deserialising cuts).
        id: the cut id. duration: seconds.
        upstream: field group -> the row committed for this cut by an upstream stage
            (column name -> numpy array or scalar; e.g. ``{"feats.fbank": {"id": ...,
            "feats": float16 (T, D)}}``). An empty row means "quarantined upstream".
    """

    __slots__ = ("_cut", "_cut_json", "duration", "id", "upstream")

    def __init__(self, *, cut: Any = None, cut_json: str | None = None, id: str | None = None,
                 duration: float | None = None,
                 upstream: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if cut is None and cut_json is None:
            raise BugError(f"CutItem {id!r} needs `cut` or `cut_json`, but got neither")
        self._cut = cut
        self._cut_json = cut_json
        self.id = str(id if id is not None else cut.id)
        self.duration = float(duration if duration is not None else cut.duration)
        self.upstream: Mapping[str, Mapping[str, Any]] = upstream or {}

    @property
    def cut(self) -> Any:
        if self._cut is None:
            # lazy: lhotse (and torch with it) takes seconds to import
            from lhotse.serialization import deserialize_item

            self._cut = deserialize_item(json.loads(str(self._cut_json)))
        return self._cut


@dataclass(frozen=True, kw_only=True)
class Quarantine:
    """A cut a stage could not use; the run goes on and the reason is reported.

    Attributes:
        id: cut id.
        reason: short stable code (``unreadable``, ``nan_or_inf``, ``empty``, ``upstream``...).
        detail: free text (the exception message, the offending value).
    """

    id: str
    reason: str
    detail: str = ""

    def to_json(self, *, stage: str, shard: int) -> dict[str, Any]:
        return {"id": self.id, "stage": stage, "shard": shard, "reason": self.reason,
                "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class FitContext:
    """What a stage's corpus-level `fit` gets.

    Attributes:
        out_dir: the run's output directory (committed upstream shards live there).
        upstream_groups: the field groups the stage reads (all their shards are committed).
        model_dir: directory the fit writes its model (e.g. centroids) into; created empty.
        num_threads: threads the fit may use.
    """

    out_dir: Path
    upstream_groups: tuple[str, ...]
    model_dir: Path
    num_threads: int = 1


@runtime_checkable
class Stage(Protocol):
    """A pipeline stage (see module docstring). `speechtok.pipeline.stages` holds the wrappers."""

    name: str
    version: str
    kind: str
    config: Any

    def group(self) -> str: ...

    def inputs(self) -> tuple[str, ...]: ...

    def fingerprint(self, upstream: str | None) -> str: ...

    def needs_fit(self) -> bool: ...

    def fit(self, ctx: FitContext) -> None: ...

    def load_model(self, model_dir: Path) -> None: ...

    def model_checksum(self) -> str | None: ...

    def group_meta_fields(self) -> dict[str, Any]: ...

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]: ...


@dataclass(frozen=True, kw_only=True)
class StageResources:
    """What one shard job of a stage needs; Ray schedules its workers by it.

    Attributes:
        cpus: CPU cores per worker. gpus: GPUs per worker (1 for ``device: cuda`` stages).
        memory_mb: memory per worker in MiB (None: not declared).
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int | None = None


#: A stage's config dataclass (the library's own config, or a subclass adding stage-only fields).
C = TypeVar("C")


class StageBase(Generic[C]):
    """Shared plumbing for stage wrappers: fingerprint, spec, group name.

    Subclasses set `type_name`, `kind`, `version`, `config_cls`, and implement `process`
    (and `fit`/`load_model`/`model_checksum` when `needs_fit()` is true).
    """

    type_name: ClassVar[str] = ""
    kind: str = ""
    version: str = "1"
    config_cls: ClassVar[type[Any]]

    def __init__(self, *, name: str, config: C, input_group: str | None = None) -> None:
        self.name = name
        self.config: C = config
        self.input_group = input_group

    def group(self) -> str:
        return f"{self.kind}.{self.name}" if self.kind != "cuts" else "cuts"

    def inputs(self) -> tuple[str, ...]:
        return (self.input_group,) if self.input_group else ()

    def needs_fit(self) -> bool:
        return False

    def fit(self, ctx: FitContext) -> None:
        raise NotImplementedError(f"stage {self.name!r} has no fit step")

    def load_model(self, model_dir: Path) -> None:
        """Loads what `fit` wrote into `model_dir` (no-op for stages without a fit)."""

    def model_checksum(self) -> str | None:
        return None

    def fit_fingerprint(self, upstream: str | None) -> str:
        """Fingerprint of the fit's inputs (everything but the model it produces)."""
        return fingerprint_of({"upstream": upstream, "stage": self.type_name, "name": self.name,
                               "version": self.version, "config": self.fingerprint_config(),
                               "input": self.input_group, "purpose": "fit"})

    def fingerprint(self, upstream: str | None) -> str:
        return fingerprint_of({"upstream": upstream, "stage": self.type_name, "name": self.name,
                               "version": self.version, "config": self.fingerprint_config(),
                               "input": self.input_group, "model": self.model_checksum()})

    def fingerprint_config(self) -> Any:
        """The config as it enters the fingerprints: its full JSON form (a stage may leave out an
        option at its default when the option is newer than shards it must keep reusing)."""
        return to_json(self.config)

    def group_meta_fields(self) -> dict[str, Any]:
        """Extra `GroupMeta` fields (frame_rate, vocab_size, dim, dtype...)."""
        return {}

    def resources(self) -> StageResources:
        """What a worker of this stage needs: 1 CPU, and 1 GPU when ``config.device`` is
        ``cuda`` (CPU stages still run beside it)."""
        device = str(getattr(self.config, "device", "cpu"))
        return StageResources(cpus=1.0, gpus=1.0 if device.startswith("cuda") else 0.0)

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        """The row written for a quarantined cut: its id and an empty (0-frame) payload."""
        raise NotImplementedError(f"stage {self.name!r} cannot quarantine cuts")

    def upstream_feats(self, item: CutItem) -> Any:
        """The ``feats`` array ``(T, D)`` of `item`'s row in this stage's input group, or None
        when that row is missing or empty (the cut was quarantined upstream)."""
        up = item.upstream.get(str(self.input_group))
        feats = None if up is None else up.get("feats")
        return None if feats is None or len(feats) == 0 else feats

    def spec(self) -> dict[str, Any]:
        """JSON-able spec from which `build_stage` rebuilds this stage in another process."""
        return {"type": self.type_name, "name": self.name, "input": self.input_group,
                "config": to_json(self.config)}

    def process(self, batch: Sequence[CutItem]) -> list[dict[str, Any] | Quarantine]:
        raise NotImplementedError


#: stage name -> how many times this process loaded that stage's model (see `count_model_load`).
_MODEL_LOADS: dict[str, int] = {}


def count_model_load(stage_name: str) -> None:
    """Notes that this process loaded the model of stage `stage_name` (for use, not a probe)."""
    _MODEL_LOADS[stage_name] = _MODEL_LOADS.get(stage_name, 0) + 1


def model_loads(stage_name: str) -> int:
    """How many times this process loaded the model of stage `stage_name`."""
    return _MODEL_LOADS.get(stage_name, 0)
