"""Whisper encoder states: transformers (tiny random model) and CTranslate2 (real tiny.en)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speechtok.errors import ConfigError, InputError
from speechtok.features.whisper_states import WhisperEncoderStates, num_frames


def test_transformers_states_crop_windows_and_batch(tiny_whisper_dir: Path) -> None:
    ws = WhisperEncoderStates(tiny_whisper_dir, dtype="float32", batch_windows=2)
    assert ws.backend == "transformers"
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (321, 16000, 480_000 + 5000)]
    batched = ws.extract_batch(waves)
    assert [b.shape for b in batched] == [(2, 32), (50, 32), (1500 + 16, 32)]
    assert [num_frames(len(w)) for w in waves] == [2, 50, 1516]
    for w, b in zip(waves, batched, strict=True):
        np.testing.assert_allclose(b, ws.extract(w), atol=1e-4, rtol=0)
    # The first window of the long signal is a full 30 s window, encoded as Whisper does.
    with torch.no_grad():
        ref = ws._encoder(torch.from_numpy(ws.log_mel(waves[2][:480_000]))[None]).last_hidden_state[0]
    np.testing.assert_allclose(batched[2][:1500], ref.numpy(), atol=1e-4, rtol=0)
    # Intermediate layer via hidden_states.
    mid = WhisperEncoderStates(tiny_whisper_dir, layer=1).extract(waves[1])
    assert mid.shape == (50, 32) and mid.dtype == np.float16
    assert not np.allclose(mid.astype(np.float32), batched[1], atol=1e-2)
    assert ws.extract(np.zeros(0, np.float32)).shape[0] == 0
    assert ws.group_meta_fields()["model_checksum"].startswith("sha256:")


def test_errors(tmp_path: Path, tiny_whisper_dir: Path) -> None:
    with pytest.raises(ConfigError, match="backend"):
        WhisperEncoderStates(tmp_path, backend="onnx")
    with pytest.raises(InputError):
        WhisperEncoderStates(tmp_path / "nothing-here")
    ws = WhisperEncoderStates(tiny_whisper_dir)
    with pytest.raises(InputError, match="16000"):
        ws.extract(np.zeros(800, np.float32), sr=8000)


def _fsdd(fsdd_dir: Path, digits: range, per_digit: int) -> tuple[list[np.ndarray], np.ndarray]:
    from lhotse import Recording

    waves, labels = [], []
    for d in digits:
        for k in range(per_digit):
            rec = Recording.from_file(fsdd_dir / f"{d}_jackson_{k}.flac").resample(16000)
            waves.append(rec.load_audio()[0])
            labels.append(d)
    return waves, np.array(labels)


def _pooled_cosines(states: list[np.ndarray]) -> np.ndarray:
    x = np.stack([s.astype(np.float32).mean(0) for s in states])
    x -= x.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_ct2_real_tiny_en_same_digit_closer(whisper_ct2_dir: Path, fsdd_dir: Path) -> None:
    ws = WhisperEncoderStates(whisper_ct2_dir, threads=1)
    assert ws.backend == "ctranslate2"
    waves, labels = _fsdd(fsdd_dir, range(3), 2)  # 6 utterances: digits 0-2, speaker jackson
    states = ws.extract_batch(waves)
    assert [s.shape for s in states] == [(num_frames(len(w)), 384) for w in waves]
    assert all(s.dtype == np.float16 and np.isfinite(s).all() for s in states)
    assert ws.group_meta_fields()["dim"] == 384
    assert ws.extract(np.zeros(0, np.float32)).shape == (0, 384)
    c = _pooled_cosines(states)
    same = (labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)
    assert c[same].mean() > c[labels[:, None] != labels[None]].mean() + 0.1
    np.testing.assert_allclose(states[0], ws.extract(waves[0]), atol=2e-3, rtol=0)


@pytest.mark.slow
def test_ct2_nearest_neighbour_digit(whisper_ct2_dir: Path, fsdd_dir: Path) -> None:
    ws = WhisperEncoderStates(whisper_ct2_dir, threads=min(2, os.cpu_count() or 1))
    waves, labels = _fsdd(fsdd_dir, range(10), 3)
    c = _pooled_cosines(ws.extract_batch(waves))
    np.fill_diagonal(c, -9.0)
    accuracy = (labels[c.argmax(1)] == labels).mean()
    assert accuracy >= 0.6, accuracy  # chance is 0.07 (2 of 29 others share the digit)
