"""Model checksums for shard provenance: sha256 over a model's weight files.

The checksum names the weights, not the code: two directories holding the same weight files
(same relative names, same bytes) get the same checksum; config files are included because they
change what the weights mean (layer count, normalisation). Hashes are cached per process by
(path, size, mtime), so a stage asking once per shard pays once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from speechtok.errors import InputError

#: File names (suffixes) that hold weights or change their meaning.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz", ".tflite", ".onnx")
CONFIG_NAMES = ("config.json", "preprocessor_config.json", "generation_config.json")

_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a whole file, streamed (not cached)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_file(path: str | Path) -> str:
    """`file_sha256`, cached by (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = file_sha256(p)
    return _CACHE[key]


def model_files(model_dir: str | Path) -> list[Path]:
    """Weight and config files of a model directory (recursively), sorted by relative path."""
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(str(model_dir), "is not a model directory")
    files = [
        p for p in root.rglob("*")
        if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_NAMES)
    ]
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        raise InputError(str(model_dir), f"holds no weight file ({', '.join(WEIGHT_SUFFIXES)})")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def model_checksum(model_dir: str | Path) -> str:
    """``"sha256:<hex>"`` over (relative name, file sha256) of every file of `model_files`."""
    root = Path(model_dir)
    return files_checksum(root, model_files(root))


def files_checksum(root: str | Path, files: list[Path]) -> str:
    """``"sha256:<hex>"`` over (name relative to `root`, file sha256) of each of `files`, in order."""
    h = hashlib.sha256()
    for p in files:
        h.update(Path(p).relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def tensor_checksum(state: dict[str, object]) -> str:
    """``"sha256:<hex>"`` of an in-memory torch ``state_dict`` (names, shapes, dtypes, bytes),
    for models that have no directory (e.g. a CTC model built in-process)."""
    # lazy: torch takes seconds to import
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        c = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(c.shape)}|{c.dtype}\n".encode())
        h.update(c.reshape(-1).view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return "sha256:" + h.hexdigest()
