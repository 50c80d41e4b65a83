"""The model-stage base classes and the per-cut model-error handling every model stage shares.

`ModelStageBase` is a stage over a pretrained model given by path (lazy load, probe the model
for its group metadata and drop it); `FeatsStageBase` adds the ``feats.NAME`` output. The
``ssl``, ``whisper`` and ``codec`` stages build on them. `run_guarded` runs a batched model call
and falls back to one cut at a time so that one bad cut is quarantined, not the shard;
`fill_feats` puts per-cut (T, D) results into rows (audio loading is
`speechtok.pipeline.stages.audio`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

import numpy as np

from speechtok.errors import BugError, ConfigError
from speechtok.failures import BUG, EnvironmentFailure, classify, describe, with_retries
from speechtok.pipeline.stage import C, Quarantine, StageBase, count_model_load
from speechtok.pipeline.stages.audio import Result


def run_guarded(fn: Callable[[list[np.ndarray]], list[Any]], waves: list[np.ndarray],
                ids: Sequence[str] | None = None) -> list[Any]:
    """``fn(waves)``; if the batched call raises, each wave alone, an exception per failure.

    Failures are classified by `speechtok.failures`: configuration errors (`ConfigError`, e.g.
    a wrong sampling rate or device) propagate; environment errors (CUDA out of memory,
    `MemoryError`, `OSError`) of a single wave are retried and then raise `EnvironmentFailure`
    naming the cut (`ids[j]`); an error that every wave raises alone is a bug and propagates.
    An error raised by some waves only is theirs (the caller quarantines them as
    ``model_error``). Returns one result (or the `Exception` it raised) per wave.
    """
    if not waves:
        return []
    try:
        return list(fn(waves))
    except ConfigError:
        raise
    except Exception as exc:
        if len(waves) == 1 and classify(exc) == BUG:
            raise
    results: list[Any] = []
    for j, w in enumerate(waves):  # one bad cut must not sink the shard: retry one by one
        try:
            results.append(with_retries(partial(_first, fn, w),
                                        item=str(ids[j]) if ids is not None else f"wave {j}"))
        except (ConfigError, EnvironmentFailure):
            raise
        except Exception as exc:
            if classify(exc) != BUG:
                raise
            results.append(exc)
    failed = [r for r in results if isinstance(r, Exception)]
    if failed and len(failed) == len(results):
        raise failed[0]  # every cut fails alone: the code is wrong, not the cuts
    return results


def _first(fn: Callable[[list[np.ndarray]], list[Any]], wave: np.ndarray) -> Any:
    return fn([wave])[0]


def fill_feats(out: list[Result], slots: list[int], feats: list[Any], *, dtype: str) -> None:
    """Puts each (T, D) result into its row as ``feats`` (cast to `dtype`), quarantining cuts
    whose extraction raised (``model_error``), gave 0 frames (``too_short``) or non-finite
    values (``nan_features``)."""
    for slot, f in zip(slots, feats, strict=True):
        row = out[slot]
        if not isinstance(row, dict):
            raise BugError(f"slot {slot} is not a row")
        cid = str(row["id"])
        if isinstance(f, BaseException):
            out[slot] = Quarantine(id=cid, reason="model_error", detail=describe(f))
            continue
        stored = np.ascontiguousarray(np.asarray(f).astype(dtype))
        if stored.shape[0] == 0:
            out[slot] = Quarantine(id=cid, reason="too_short", detail="0 frames (the audio is shorter "
                                   "than the stage's frame or the model's receptive field)")
        elif not np.isfinite(stored).all():
            out[slot] = Quarantine(id=cid, reason="nan_features",
                                   detail=f"non-finite values in the {stored.shape} output")
        else:
            row["feats"] = stored  # (T, D)


class ModelStageBase(StageBase[C]):
    """A stage over a pretrained model given by path: lazy load, probe-and-drop metadata."""

    def __init__(self, *, name: str, config: C, input_group: str | None = None) -> None:
        if input_group:
            raise ConfigError(f"{name}.input", input_group,
                              f"must be empty: a {self.type_name} stage reads the cuts' audio")
        super().__init__(name=name, config=config, input_group=None)
        self._obj: Any = None
        self._facts: dict[str, Any] | None = None

    def _load(self) -> Any:
        """Builds the library object (extractor / tokenizer) from the config."""
        raise NotImplementedError

    def _probe(self, obj: Any) -> dict[str, Any]:
        """GroupMeta fields (frame_rate, dim/num_codebooks, vocab_size, dtype, model_checksum)."""
        raise NotImplementedError

    def model(self) -> Any:
        """The loaded library object (cached for the life of this stage)."""
        if self._obj is None:
            self._obj = self._load()
            count_model_load(self.name)
        return self._obj

    def facts(self) -> dict[str, Any]:
        """The group metadata; loads the model only for it when not loaded (then drops it)."""
        if self._facts is None:
            obj = self._obj if self._obj is not None else self._load()
            self._facts = self._probe(obj)
        return self._facts

    def model_checksum(self) -> str | None:
        value = self.facts().get("model_checksum")
        return None if value is None else str(value)

    def group_meta_fields(self) -> dict[str, Any]:
        return dict(self.facts())


class _HasDtype(Protocol):
    @property
    def dtype(self) -> str: ...


#: The config of a ``feats`` stage: anything with the stored ``dtype``.
FC = TypeVar("FC", bound=_HasDtype)


class FeatsStageBase(ModelStageBase[FC]):
    """A model stage that writes ``feats.NAME`` (float (T, D) per cut, `config.dtype`)."""

    kind = "feats"

    def _probe(self, obj: Any) -> dict[str, Any]:
        fields = dict(self._meta_fields(obj))
        fields["frame_rate"] = float(fields["frame_rate"])
        return fields

    def _meta_fields(self, obj: Any) -> dict[str, Any]:
        """The extractor's `group_meta_fields` (frame_rate, dim, dtype, model_checksum)."""
        raise NotImplementedError

    def empty_row(self, cut_id: str) -> dict[str, Any]:
        return {"id": cut_id, "feats": np.zeros((0, int(self.facts()["dim"])), self.config.dtype)}
