"""Every model load goes through here: a local directory first, the Hugging Face cache next, a
download only when the user asked for one.

Policy (issue 14, "offline by default"):

- `resolve_model(name)` returns a local directory for `name`: `name` itself when it is a
  directory; else, for a hub id (`org/name`), the cached snapshot (never a network call);
  else, only when downloads are allowed, `huggingface_hub.snapshot_download` fetches it.
- Downloads are allowed only when the user passed ``--allow-download`` on the command line
  (`add_download_flag` / `configure_from_args`), or a library caller passed
  ``allow_download=True``. The choice lives in the environment variable
  ``SPEECHTOK_ALLOW_DOWNLOAD`` so that worker processes (process pools, Ray) inherit it.
  When it is off, ``HF_HUB_OFFLINE`` is set too, so no library below us reaches the network.
- A hub model resolves to ``snapshots/<commit>`` of the cache: the commit is its pinned
  revision (`ResolvedModel.revision`), recorded in `pins()` and in what callers put into
  their fingerprints; the weights' checksum (`speechtok.features.checksum.model_checksum` of
  `ResolvedModel.path`) is always available, as the model is always a local directory.
- `from_pretrained(cls, name, **kw)` calls ``cls.from_pretrained(<local dir>,
  local_files_only=True, **kw)``: the one way the toolkit loads a transformers model.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechtok.errors import InputError

#: Environment variable holding the download policy ("1" allows downloads).
ENV_ALLOW = "SPEECHTOK_ALLOW_DOWNLOAD"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PINS: dict[str, str] = {}


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to a local directory.

    Attributes:
        name: what the caller passed (a path or a hub id).
        path: the local directory holding config and weights.
        revision: the hub commit (40 hex) for a hub model, None for a local directory.
        downloaded: True when this call fetched it from the network.
    """

    name: str
    path: Path
    revision: str | None
    downloaded: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record for configs and fingerprints (no absolute cache path)."""
        return {"name": self.name, "revision": self.revision}


def downloads_allowed() -> bool:
    """True when the user allowed hub downloads (``--allow-download``) for this process tree."""
    return os.environ.get(ENV_ALLOW, "") == "1"


def configure(*, allow_download: bool) -> None:
    """Sets the download policy of this process and of every process it starts.

    Off (the default): ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set, so no
    library reaches the network. On: both are cleared so `resolve_model` can fetch.
    """
    if allow_download:
        os.environ[ENV_ALLOW] = "1"
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.pop(var, None)
    else:
        os.environ[ENV_ALLOW] = "0"
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"


def add_download_flag(parser: argparse.ArgumentParser) -> None:
    """Adds ``--allow-download`` to a subcommand that loads models (run, train, compare, ...)."""
    parser.add_argument(
        "--allow-download", action="store_true",
        help="allow fetching models that are neither a local directory nor in the Hugging Face "
             "cache (off by default: everything is loaded offline; a fetched model is pinned to "
             "its commit, which enters the fingerprint)",
    )


def configure_from_args(args: argparse.Namespace) -> bool:
    """Applies ``args.allow_download`` (False when the command has no such flag); returns it."""
    allow = bool(getattr(args, "allow_download", False))
    configure(allow_download=allow)
    return allow


def pins() -> dict[str, str]:
    """Hub id -> commit of every hub model resolved in this process (for run records)."""
    return dict(_PINS)


def _looks_like_path(name: str) -> bool:
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or not _HUB_ID.match(name)


def _revision_of(snapshot: Path) -> str | None:
    return snapshot.name if _COMMIT.match(snapshot.name) else None


def resolve_model(name: str | Path, *, revision: str | None = None,
                  allow_download: bool | None = None) -> ResolvedModel:
    """The local directory of model `name` (see the module docstring for the order).

    Args:
        name: a local directory, or a hub id ``org/name``.
        revision: hub branch, tag or commit; None takes the cached ``main`` (or downloads it).
        allow_download: overrides the process policy (`downloads_allowed`) when not None.

    Raises:
        InputError: `name` is not a directory, not cached, and downloads are not allowed (the
            message says to pass ``--allow-download`` or a local directory), or the download
            failed.
    """
    text = str(name)
    local = Path(text).expanduser()
    if local.is_dir():
        return ResolvedModel(text, local, None, False)
    if _looks_like_path(text):
        raise InputError(text, "no such model directory; pass a directory holding config.json and the weights")
    # lazy: huggingface_hub only when downloading
    from huggingface_hub import snapshot_download

    try:
        snap = Path(snapshot_download(text, revision=revision, local_files_only=True))
        downloaded = False
    except (OSError, ValueError) as cached_exc:  # LocalEntryNotFoundError, HFValidationError
        allow = downloads_allowed() if allow_download is None else allow_download
        if not allow:
            raise InputError(text, "is not a local directory and not in the Hugging Face cache; pass a "
                             "local model directory, or --allow-download to fetch it "
                             f"({type(cached_exc).__name__})") from cached_exc
        if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
            raise InputError(text, "download requested but HF_HUB_OFFLINE is set; unset it or pass a "
                             "local model directory") from cached_exc
        try:
            snap = Path(snapshot_download(text, revision=revision))
        except (OSError, ValueError) as exc:  # network and hub (HTTP) errors
            raise InputError(text, f"download failed ({type(exc).__name__}: {exc}); pass a local "
                             "model directory or retry with a network") from exc
        downloaded = True
    rev = _revision_of(snap)
    if rev is not None:
        _PINS[text] = rev
    return ResolvedModel(text, snap, rev, downloaded)


def from_pretrained(cls: Any, name: str | Path, *, revision: str | None = None,
                    allow_download: bool | None = None, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on the local directory of `name` (never touches the network)."""
    resolved = resolve_model(name, revision=revision, allow_download=allow_download)
    return cls.from_pretrained(str(resolved.path), local_files_only=True, **kwargs)
