"""Loading a `transformers` codec (Mimi, X-Codec) from a local model directory, offline.

Expected layout of a model directory (what ``save_pretrained`` writes and what the Hub repos
``kyutai/mimi`` and ``hf-audio/xcodec-*`` hold):

    MODEL_DIR/config.json               model_type "mimi" or "xcodec"
    MODEL_DIR/model.safetensors         weights (or model.safetensors.index.json + shards)
    MODEL_DIR/preprocessor_config.json  optional (not read: speechtok resamples with lhotse)

`source` may also be a hub id (``kyutai/mimi``): it resolves through `speechtok.hub` (the
Hugging Face cache, offline), and is downloaded only with ``allow_download=True`` or the CLI's
``--allow-download``. Weights are read from safetensors only (``use_safetensors=True``): no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from speechtok.errors import ConfigError, InputError
from speechtok.features.checksum import model_checksum
from speechtok.hub import resolve_model

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def expected_layout(model_type: str) -> str:
    """One line naming the files a local `model_type` directory must hold."""
    return (f"a directory with {CONFIG_FILE} (model_type {model_type!r}) and "
            f"{WEIGHT_FILES[0]} (or {WEIGHT_FILES[1]} + shards), as save_pretrained writes")


def looks_like_dir(source: str) -> bool:
    """True when `source` is meant as a local directory rather than a hub id ``org/name``: it
    exists, is absolute or relative (``./``, ``~``), or has other than one ``/``."""
    return (Path(source).expanduser().is_dir() or source.startswith(("/", ".", "~"))
            or source.count("/") != 1)


def check_model_dir(model_dir: str, model_type: str) -> dict[str, Any]:
    """Validates a local model directory; returns its parsed ``config.json``.

    Raises:
        ConfigError: the directory is missing, lacks ``config.json`` or the weights (the message
            names the expected files), or its ``model_type`` differs from `model_type`.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ConfigError("model_dir", model_dir, f"must be {expected_layout(model_type)}; "
                          "the directory does not exist (copy the model there, or pass a hub "
                          "id with --allow-download)")
    missing = [CONFIG_FILE] if not (d / CONFIG_FILE).is_file() else []
    if not any((d / w).is_file() for w in WEIGHT_FILES):
        missing.append(WEIGHT_FILES[0])
    if missing:
        raise ConfigError("model_dir", model_dir, f"must be {expected_layout(model_type)}; "
                          f"missing: {', '.join(missing)}")
    try:
        cfg = json.loads((d / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(str(d / CONFIG_FILE), f"is not readable JSON ({exc})") from exc
    if cfg.get("model_type") != model_type:
        raise ConfigError("model_dir", model_dir, f"must hold a {model_type!r} model, but its "
                          f"{CONFIG_FILE} says model_type={cfg.get('model_type')!r}")
    return dict(cfg)


def resolve_model_dir(source: str, model_type: str, *, allow_download: bool = False) -> tuple[Path, str | None]:
    """The local directory of `source` (a directory, or a hub id in the HF cache / downloaded
    when allowed, through `speechtok.hub.resolve_model`), checked; returns (dir, hub revision).

    Raises:
        ConfigError: not found offline, or the directory lacks the expected files (named).
    """

    try:
        resolved = resolve_model(source, allow_download=True if allow_download else None)
    except InputError as exc:
        raise ConfigError("model_dir", source, f"must be {expected_layout(model_type)} ({exc.reason})") from exc
    check_model_dir(str(resolved.path), model_type)
    return resolved.path, resolved.revision


def load_pretrained(cls: Any, source: str, model_type: str, *, allow_download: bool = False,
                    config: Any = None) -> tuple[Any, str]:
    """Loads ``cls.from_pretrained`` on the local directory of `source`, offline; returns
    (model in eval mode, checksum).

    Args:
        cls: a `transformers` model class (``MimiModel``, ``XcodecModel``).
        source: a local model directory, or a hub id found in the Hugging Face cache (fetched
            only with `allow_download` or the CLI's ``--allow-download``).
        model_type: expected ``config.json`` model_type.
        allow_download: permit fetching `source` from the Hub.
        config: a prebuilt config object to use instead of the directory's (X-Codec); a
            callable is called with the parsed ``config.json``.

    Returns:
        The model (eval, no grad) and ``"sha256:<hex>"`` of its weight and config files.
    """
    local, _rev = resolve_model_dir(source, model_type, allow_download=allow_download)
    kw: dict[str, Any] = {"use_safetensors": True}
    if config is not None:
        kw["config"] = config(check_model_dir(str(local), model_type)) if callable(config) else config
    model = cls.from_pretrained(str(local), local_files_only=True, **kw)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, model_checksum(local)
