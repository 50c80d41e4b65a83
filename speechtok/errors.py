"""Exceptions shared by every speechtok module.

Each carries the offending value so that callers (and the CLI) can report which item was wrong
and what to do, in the form "`k` must be >= 2, but is 1 instead."
"""

from __future__ import annotations

from typing import Any


class SpeechtokError(Exception):
    """Base class of every error speechtok raises on purpose."""


class ConfigError(SpeechtokError, ValueError):
    """A configuration value is invalid.

    Attributes:
        field: name of the offending field.
        value: the offending value.
    """

    def __init__(self, field: str, value: Any, requirement: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"`{field}` {requirement}, but is {value!r} instead.")


class InputError(SpeechtokError):
    """An input item (file, cut, shard) cannot be used; `item` names it."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


class BugError(SpeechtokError):
    """A broken invariant inside speechtok; stops the run with its traceback.

    Raised where speechtok's own code, not the input or the configuration, is at fault (a
    writer used outside its `with` block, a model that returned fewer frames than its own
    formula says). The failure policy counts it as a bug (`speechtok.failures.BUG`): never
    quarantined, never retried; the CLI lets it through with its traceback.
    """


def check_at_least(minimum: int, **values: float | None) -> None:
    """Raises `ConfigError` for the first of `values` (``name=value``, in order; None passes)
    below `minimum`: ``check_at_least(1, workers=2, threads=0)`` raises "`threads` must be >= 1,
    but is 0 instead."."""
    for name, value in values.items():
        if value is not None and value < minimum:
            raise ConfigError(name, value, f"must be >= {minimum}")
