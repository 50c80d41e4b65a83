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
