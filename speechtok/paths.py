"""Where speechtok finds things outside the package: the source tree and ``../shared``.

``{shared}`` in recipe strings is the ``SPEECHTOK_SHARED`` environment variable, else the
``shared`` folder next to the project (real data and weights for tests and benchmarks);
``{root}`` is the project directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``SPEECHTOK_SHARED``, else ``ROOT/../shared`` (it may not exist)."""
    return Path(os.environ.get("SPEECHTOK_SHARED", ROOT.parent / "shared"))


def expand_placeholders(value: Any) -> Any:
    """Replaces ``{shared}`` and ``{root}`` in strings, recursively in lists and dicts."""
    if isinstance(value, str):
        return value.replace("{shared}", str(shared_dir())).replace("{root}", str(ROOT))
    if isinstance(value, list):
        return [expand_placeholders(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_placeholders(v) for k, v in value.items()}
    return value
