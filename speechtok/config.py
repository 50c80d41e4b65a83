"""Recipes and their config dataclasses: the one place a raw mapping becomes a typed config.

`build(cls, raw, where)` turns a recipe section (a mapping from YAML/JSON) into the library's
own frozen config dataclass: unknown keys are refused naming the valid ones, lists become
tuples for tuple fields, and the object's ``validate()`` runs once. `to_json` is the inverse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from speechtok.errors import InputError

T = TypeVar("T")


def build(cls: type[T], raw: Mapping[str, Any] | None, where: str) -> T:
    """`cls(**raw)` with unknown keys reported; lists become tuples for tuple fields; validated."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InputError(f"`{where}.{unknown[0]}`", f"is not a field of {where}; known fields: {sorted(fields)}")
    for name, value in raw.items():
        if isinstance(value, list) and "tuple" in str(fields[name].type):
            raw[name] = tuple(value)
    obj = cls(**raw)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def to_json(obj: Any) -> Any:
    """JSON-able form of a config dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_json(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, tuple | list):
        return [to_json(v) for v in obj]
    return obj
