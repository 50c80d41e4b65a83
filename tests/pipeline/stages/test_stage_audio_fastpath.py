"""The whole-file fast path of `load_mono` gives exactly lhotse's samples, and steps aside
for every cut it does not cover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.pipeline.stages import audio


@pytest.fixture
def flac(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    p = tmp_path / "a.flac"
    sf.write(p, x, 16000, subtype="PCM_16")
    return p


def _cut(path: Path):  # -> MonoCut
    from lhotse import Recording

    return Recording.from_file(path).to_cut()


@pytest.mark.parametrize("suffix,subtype", [(".flac", "PCM_16"), (".wav", "PCM_16"), (".wav", "FLOAT")])
def test_whole_file_equals_lhotse(tmp_path: Path, suffix: str, subtype: str) -> None:
    x = (np.random.default_rng(1).standard_normal(12345) * 0.1).astype(np.float32)
    p = tmp_path / f"b{suffix}"
    sf.write(p, x, 16000, subtype=subtype)
    cut = _cut(p)
    assert audio._whole_file(cut, 16000) == str(p)
    got = audio.load_mono(cut, 16000)
    want = np.asarray(cut.load_audio(), dtype=np.float32)[0]
    assert got.dtype == np.float32 and got.tobytes() == want.tobytes()


def test_subcut_resample_and_stereo_use_lhotse(flac: Path, tmp_path: Path) -> None:
    cut = _cut(flac)
    sub = cut.truncate(offset=0.5, duration=1.0)
    assert audio._whole_file(sub, 16000) is None
    np.testing.assert_array_equal(audio.load_mono(sub, 16000), sub.load_audio()[0])
    assert audio._whole_file(cut, 8000) is None
    assert audio.load_mono(cut, 8000).shape == (16000,)
    st = tmp_path / "s.wav"
    sf.write(st, np.zeros((800, 2), np.float32), 16000)
    assert audio._whole_file(_cut(st), 16000) is None


def test_length_mismatch_defers_to_lhotse(flac: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = _cut(flac)
    calls = []
    real = type(cut).load_audio

    def spy(self, *a, **k):  # noqa: ANN001, ANN002, ANN003
        calls.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(type(cut), "load_audio", spy)
    audio.load_mono(cut, 16000)
    assert calls == []  # fast path taken
    monkeypatch.setattr(cut.recording, "num_samples", cut.recording.num_samples + 1)
    audio.load_mono(cut, 16000)
    assert calls == [1]
