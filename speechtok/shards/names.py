"""Stage and group names: one regex, since both become parts of file and directory names.

A stage name (``fbank``, ``km100``, ``whisper_tiny``) is 1-64 characters of ``[A-Za-z0-9_-]``
starting with a letter or digit; a group is ``cuts`` or ``KIND.NAME`` (``feats.fbank``) with
KIND in lower-case letters. Neither can hold ``/``, ``..`` or a leading ``-``, so a name never
leads a path out of ``OUT`` (``OUT/models/NAME``, ``OUT/shards/NNNNN.GROUP.arrow``).
"""

from __future__ import annotations

import re

from speechtok.errors import ConfigError

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}"
NAME_RE = re.compile(rf"^{NAME_PATTERN}$")
GROUP_RE = re.compile(rf"^(?:cuts|[a-z]+\.{NAME_PATTERN})$")


def check_stage_name(name: object, *, field: str = "stages.name") -> str:
    """Returns `name` if it is a valid stage name, else raises `ConfigError`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(field, name, "must be 1-64 characters of [A-Za-z0-9_-] starting with "
                          "a letter or digit (it names files and directories)")
    return name


def is_group_name(group: object) -> bool:
    """Whether `group` is ``cuts`` or ``KIND.NAME`` (see module docstring)."""
    return isinstance(group, str) and GROUP_RE.match(group) is not None
