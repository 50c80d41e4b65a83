"""speechtok.hub: local first, the cache next, a download only when allowed (issue 14)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from speechtok import hub
from speechtok.errors import InputError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache in tmp (the real one is never read)."""
    import huggingface_hub.constants as c

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_model(cache: Path, repo: str, src: Path) -> Path:
    """Lays `src` out as the cached snapshot of `repo` at COMMIT (the hub cache layout)."""
    base = cache / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / COMMIT
    shutil.copytree(src, snap)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(COMMIT)
    return snap


def test_local_directory_first(tmp_path: Path) -> None:
    r = hub.resolve_model(str(tmp_path))
    assert r.path == tmp_path and r.revision is None and not r.downloaded


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such model directory"):
        hub.resolve_model(str(tmp_path / "nope"))


def test_uncached_hub_id_is_refused_offline(fake_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.configure(allow_download=False)
    with pytest.raises(InputError, match="--allow-download") as err:
        hub.resolve_model("some-org/not-cached")
    assert err.value.item == "some-org/not-cached"


def test_download_allowed_but_hub_offline_is_loud(fake_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        hub.resolve_model("some-org/not-cached", allow_download=True)


def test_cached_hub_id_is_pinned_and_loads(fake_cache: Path, tiny_whisper_dir: Path) -> None:
    from speechtok.features.whisper_states import WhisperEncoderStates

    _cache_model(fake_cache, "tiny-org/whisper", tiny_whisper_dir)
    r = hub.resolve_model("tiny-org/whisper")
    assert r.revision == COMMIT and not r.downloaded
    assert hub.pins()["tiny-org/whisper"] == COMMIT
    enc = WhisperEncoderStates("tiny-org/whisper", backend="transformers")
    d = enc.describe()
    assert d["revision"] == COMMIT
    assert d["model_checksum"]  # a cached hub model has a checksum: it enters the fingerprint


def test_configure_sets_offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (hub.ENV_ALLOW, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert not hub.downloads_allowed()
    parser = argparse.ArgumentParser()
    hub.add_download_flag(parser)
    assert hub.configure_from_args(parser.parse_args([])) is False
    assert not hub.downloads_allowed()
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert hub.configure_from_args(parser.parse_args(["--allow-download"])) is True
    assert hub.downloads_allowed() and "HF_HUB_OFFLINE" not in os.environ


@pytest.mark.parametrize("command", [["run", "r.yaml", "-o", "x"], ["train", "token", "r.yaml", "-o", "x"],
                                     ["compare", "r.yaml", "-o", "x"]])
def test_model_loading_commands_take_the_flag(command: list[str]) -> None:
    from speechtok.cli import build_parser

    args = build_parser().parse_args([*command, "--allow-download"])
    assert args.allow_download is True
