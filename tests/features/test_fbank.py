"""The fast fbank path against lhotse's `Fbank` (the reference), on synthetic and real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse.features import Fbank

from speechtok.errors import ConfigError, InputError
from speechtok.features.fbank import (
    FBANK_ATOL,
    FBANK_ATOL_ALL,
    FBANK_LOUD_FLOOR,
    FbankConfig,
    FbankExtractor,
    compute_fbank,
    compute_fbank_batch,
    num_frames,
)


def _synthetic() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(40000) / 16000
    return [
        (0.1 * rng.standard_normal(n)).astype(np.float32)
        for n in (400, 401, 559, 560, 1000, 16000, 12345)
    ] + [
        (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        (0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t)).astype(np.float32),  # chirp
        (0.2 + 0.01 * rng.standard_normal(8000)).astype(np.float32),  # DC offset
        np.zeros(1600, dtype=np.float32),  # digital silence: log(eps) everywhere
        (0.9 * np.sign(np.sin(2 * np.pi * 50 * t[:8000]))).astype(np.float32),  # square wave
    ]


def _assert_close(ref: np.ndarray, ours: np.ndarray) -> None:
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    diff = np.abs(ref - ours)
    loud = ref > FBANK_LOUD_FLOOR
    assert diff.max() <= FBANK_ATOL_ALL, diff.max()
    if loud.any():
        assert diff[loud].max() <= FBANK_ATOL, diff[loud].max()


def test_matches_lhotse_on_synthetic_signals() -> None:
    cfg = FbankConfig()
    ref = Fbank(cfg.to_lhotse())
    ex = FbankExtractor(cfg)
    for wave in _synthetic():
        _assert_close(ref.extract(wave, 16000), ex.extract(wave, 16000))


@pytest.mark.parametrize("jit", [True, False])
def test_matches_lhotse_with_other_options(jit: bool) -> None:
    wave = (0.1 * np.random.default_rng(1).standard_normal(9000)).astype(np.float32)
    for cfg in (
        FbankConfig(num_mel_bins=40, window_type="hamming"),  # window[0] != 0: z[0] matters
        FbankConfig(window_type="blackman", remove_dc_offset=False, block_frames=7),
        FbankConfig(snip_edges=True, remove_dc_offset=False, preemph_coeff=0.0),
        FbankConfig(sampling_rate=8000, low_freq=0.0, high_freq=0.0, window_type="hanning"),
    ):
        w = wave[: len(wave) * cfg.sampling_rate // 16000]
        ours = FbankExtractor(cfg, jit=jit).extract(w, cfg.sampling_rate)
        _assert_close(Fbank(cfg.to_lhotse()).extract(w, cfg.sampling_rate), ours)


def test_jit_and_torch_framing_agree_across_blocks() -> None:
    """The numba framing kernel and the torch ops give the same features, blocks of 5 frames
    splitting signals at arbitrary places (hamming: the first sample of each frame counts)."""
    waves = _synthetic()
    for window in ("povey", "hamming"):
        cfg = FbankConfig(window_type=window, block_frames=5)
        jit = FbankExtractor(cfg, jit=True).extract_batch(waves, 16000)
        plain = FbankExtractor(cfg, jit=False).extract_batch(waves, 16000)
        ref = Fbank(cfg.to_lhotse())
        for wave, a, b in zip(waves, jit, plain, strict=True):
            _assert_close(ref.extract(wave, 16000), a)
            _assert_close(ref.extract(wave, 16000), b)
            loud = a > FBANK_LOUD_FLOOR
            if loud.any():
                assert np.abs(a - b)[loud].max() <= FBANK_ATOL


def test_batch_equals_single_and_frame_count() -> None:
    waves = _synthetic()
    batch = compute_fbank_batch(waves, 16000, FbankConfig(block_frames=64))
    for wave, feats in zip(waves, batch, strict=True):
        assert feats.shape == (num_frames(len(wave), FbankConfig()), 80)
        assert feats.shape[0] == (len(wave) + 80) // 160
        np.testing.assert_allclose(feats, compute_fbank(wave, 16000), atol=1e-5, rtol=0)


def test_matches_lhotse_on_real_speech(speechocean_dir: Path) -> None:
    cfg = FbankConfig()
    ref = Fbank(cfg.to_lhotse())
    files = sorted((speechocean_dir / "audio").rglob("*.flac"))[:40]
    waves = [sf.read(f, dtype="float32")[0] for f in files]
    for wave, ours in zip(waves, compute_fbank_batch(waves, 16000, cfg), strict=True):
        _assert_close(ref.extract(wave, 16000), ours)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="num_mel_bins"):
        FbankConfig(num_mel_bins=2).validate()
    with pytest.raises(ConfigError, match="window_type"):
        FbankExtractor(FbankConfig(window_type="kaiser"))
    with pytest.raises(InputError, match="8000 Hz"):
        compute_fbank(np.zeros(800, np.float32), 8000)
    with pytest.raises(InputError, match="1-D"):
        compute_fbank(np.zeros((2, 800), np.float32), 16000)


def test_empty_and_tiny_signals() -> None:
    assert compute_fbank(np.zeros(0, np.float32), 16000).shape == (0, 80)
    assert compute_fbank(np.zeros(79, np.float32), 16000).shape == (0, 80)
    assert compute_fbank(np.ones(100, np.float32) * 0.1, 16000).shape == (1, 80)
