"""dMel: bounded quantisation error, Griffin-Lim resynthesis keeps the energy envelope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.dmel import DMelConfig, DMelTokenizer


def voiced(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: harmonics of a gliding f0, syllable-rate amplitude bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(h * phase) / h for h in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2  # bursts with silences between
    return (0.3 * env * x + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def frame_db(x: np.ndarray, hop: int) -> np.ndarray:
    n = len(x) // hop
    return 10 * np.log10((x[: n * hop].reshape(n, hop) ** 2).mean(1) + 1e-8)


@pytest.fixture(scope="module")
def tok() -> DMelTokenizer:
    cfg = DMelConfig(sample_rate=16000, n_mels=40, griffin_lim_iters=16)
    return DMelTokenizer.fit_waves([voiced(1.0, 16000, s) for s in range(3)], cfg)


def test_roundtrip_error_is_at_most_half_a_bin(tok: DMelTokenizer) -> None:
    mel = tok.log_mel(voiced(1.0, 16000, seed=1))  # inside the training range
    assert mel.shape == (1 + 16000 // 160, 40) and mel.dtype == np.float32
    tokens = tok.encode(mel)
    assert tokens.dtype == np.uint8 and tokens.max() < 16 and tokens.shape == mel.shape
    err = np.abs(tok.decode(tokens) - mel)
    assert (err <= tok.width / 2 + 1e-4).all()
    # values outside the range clip to the edge bins instead of wrapping
    out = tok.encode(np.vstack([mel[:1] + 100, mel[:1] - 100]))
    assert (out[0] == 15).all() and (out[1] == 0).all()
    assert tok.info.frame_rate == 100 and tok.info.vocab_size == 16 and tok.info.num_codebooks == 40


def test_griffin_lim_keeps_energy_envelope(tok: DMelTokenizer) -> None:
    wave = voiced(1.0, 16000, seed=2)
    back = tok.decode_wave(tok.encode_wave(wave), length=len(wave))
    assert back.shape == wave.shape and np.isfinite(back).all()
    a, b = frame_db(wave, 160), frame_db(back, 160)
    assert np.corrcoef(a, b)[0, 1] > 0.9
    loud = a > a.max() - 30
    assert abs(np.median(a[loud] - b[loud])) < 6.0  # level within ~6 dB on voiced frames


def test_global_range_save_load(tmp_path: Path) -> None:
    cfg = DMelConfig(n_mels=20, n_bins=8, range_mode="global")
    tok = DMelTokenizer.fit_waves([voiced(0.5, 16000)], cfg)
    assert np.all(tok.low == tok.low[0]) and np.all(tok.high == tok.high[0])
    tok.save(tmp_path / "dmel.json")
    again = DMelTokenizer.load(tmp_path / "dmel.json")
    w = voiced(0.5, 16000, seed=3)
    assert np.array_equal(again.encode_wave(w), tok.encode_wave(w))
    batch = tok.encode_batch([w[:4000], w])
    assert np.array_equal(batch[0], tok.encode_wave(w[:4000]))


def test_errors() -> None:
    with pytest.raises(ConfigError, match="n_bins"):
        DMelConfig(n_bins=1).validate()
    with pytest.raises(ConfigError, match="range_mode"):
        DMelConfig(range_mode="local").validate()
    tok = DMelTokenizer(DMelConfig(n_mels=4, n_bins=4), np.zeros(4), np.ones(4))
    with pytest.raises(InputError, match="n_bins"):
        tok.decode(np.full((2, 4), 4, np.uint8))
    with pytest.raises(InputError, match="mono"):
        tok.log_mel(np.zeros((2, 100), np.float32))


@pytest.mark.shared
def test_real_speech_fsdd(fsdd_dir: Path) -> None:
    files = sorted(fsdd_dir.glob("*.flac"))[:6]
    waves = [sf.read(f, dtype="float32")[0] for f in files]
    cfg = DMelConfig(sample_rate=8000, n_mels=40, n_fft=256, win_length=200, hop_length=80,
                     griffin_lim_iters=16)
    tok = DMelTokenizer.fit_waves(waves[:5], cfg)
    w = waves[5]
    back = tok.decode_wave(tok.encode_wave(w), length=len(w))
    a, b = frame_db(w, 80), frame_db(back, 80)
    assert np.corrcoef(a, b)[0, 1] > 0.8


def test_the_default_config_decodes_and_a_rank_deficient_one_is_refused() -> None:
    """Regression: the old default (80 mels, n_fft 400: 201 bins, filterbank rank 75) could
    encode but not decode (InverseMelScale's least squares failed). Now the default decodes
    and the old pair is refused when the config is validated, naming the fix."""
    from speechtok.tokenizers.dmel import mel_filterbank_rank

    cfg = DMelConfig(griffin_lim_iters=4)
    assert cfg.n_mels == 80 and mel_filterbank_rank(cfg) == 80
    wave = voiced(0.5, 16000)
    tok = DMelTokenizer.fit_waves([wave], cfg)
    back = tok.decode_wave(tok.encode_wave(wave), length=len(wave))
    assert back.shape == wave.shape and np.isfinite(back).all() and np.abs(back).max() > 0
    old = DMelConfig(n_mels=80, n_fft=400)
    with pytest.raises(ConfigError, match=r"n_fft.*rank 75 < n_mels 80.*raise n_fft to 1024.*n_mels <= \d+"):
        old.validate()
    with pytest.raises(ConfigError, match="n_fft"):
        DMelTokenizer.fit_waves([wave], old)  # refused before any work
    DMelConfig(n_mels=40, n_fft=400).validate()  # 40 mels resolve in 201 bins
