"""Loading a `transformers` codec (Mimi, X-Codec) from a local model directory, offline.

Expected layout of a model directory (what ``save_pretrained`` writes and what the Hub repos
``kyutai/mimi`` and ``hf-audio/xcodec-*`` hold):

    MODEL_DIR/config.json               model_type "mimi" or "xcodec"
    MODEL_DIR/model.safetensors         weights (or model.safetensors.index.json + shards)
    MODEL_DIR/preprocessor_config.json  optional (not read: speechtok resamples with lhotse)

Nothing is downloaded unless the caller passes ``allow_download=True`` with a Hub id instead of a
directory. Weights are read from safetensors only (``use_safetensors=True``): no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from speechtok.errors import ConfigError, InputError
from speechtok.features.checksum import model_checksum

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def expected_layout(model_type: str) -> str:
    """One line naming the files a local `model_type` directory must hold."""
    return (f"a directory with {CONFIG_FILE} (model_type {model_type!r}) and "
            f"{WEIGHT_FILES[0]} (or {WEIGHT_FILES[1]} + shards), as save_pretrained writes")


def check_model_dir(model_dir: str, model_type: str) -> dict[str, Any]:
    """Validates a local model directory; returns its parsed ``config.json``.

    Raises:
        ConfigError: the directory is missing, lacks ``config.json`` or the weights (the message
            names the expected files), or its ``model_type`` differs from `model_type`.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ConfigError("model_dir", model_dir, f"must be {expected_layout(model_type)}; "
                          "the directory does not exist (copy the model there, or pass "
                          "allow_download=True with a Hub id)")
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


def load_pretrained(cls: Any, source: str, model_type: str, *, allow_download: bool = False,
                    config: Any = None) -> tuple[Any, str]:
    """Loads ``cls.from_pretrained(source)`` offline; returns (model in eval mode, checksum).

    Args:
        cls: a `transformers` model class (``MimiModel``, ``XcodecModel``).
        source: a local model directory; a Hub id only with `allow_download`.
        model_type: expected ``config.json`` model_type.
        allow_download: permit fetching `source` from the Hub when it is not a directory.
        config: a prebuilt config object to use instead of the directory's (X-Codec).

    Returns:
        The model (eval, no grad) and ``"sha256:<hex>"`` of its weight and config files.
    """
    kw: dict[str, Any] = {"use_safetensors": True}
    if config is not None:
        kw["config"] = config
    if Path(source).is_dir() or not allow_download:
        check_model_dir(source, model_type)
        model = cls.from_pretrained(source, local_files_only=True, **kw)
        checksum = model_checksum(source)
    else:
        from huggingface_hub import snapshot_download

        local = snapshot_download(source, allow_patterns=["*.json", "*.safetensors"])
        check_model_dir(local, model_type)
        model = cls.from_pretrained(local, local_files_only=True, **kw)
        checksum = model_checksum(local)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, checksum
