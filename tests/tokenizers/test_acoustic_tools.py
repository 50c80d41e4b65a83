"""Bucketing, chunk plans, metrics and frame alignment."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechtok.errors import ConfigError, InputError
from speechtok.features.batching import exact_length_buckets
from speechtok.tokenizers.acoustic.alignment import frame_map, frames_to_seconds, resample_tokens
from speechtok.tokenizers.acoustic.base import CodecInfo
from speechtok.tokenizers.acoustic.batching import run_bucketed
from speechtok.tokenizers.acoustic.chunking import plan_chunks, stitch
from speechtok.tokenizers.acoustic.metrics import (
    CorpusMetrics,
    codebook_histograms,
    codebook_usage,
    mel_distance,
    si_sdr,
    stoi,
)


@given(st.lists(st.integers(1, 50), min_size=0, max_size=60), st.integers(1, 200), st.integers(1, 8))
def test_buckets_cover_each_index_once_with_equal_lengths(lengths: list[int], cap: int, bs: int) -> None:
    batches = exact_length_buckets(lengths, max_batch_samples=cap, max_batch_size=bs)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert len({lengths[i] for i in b}) == 1 and 1 <= len(b) <= bs
        assert len(b) == 1 or len(b) * lengths[b[0]] <= cap


def test_run_bucketed_keeps_input_order() -> None:
    pieces = [np.full((1, n), i, np.float32) for i, n in enumerate([3, 5, 3, 7, 5])]
    calls: list[int] = []

    def enc(x: np.ndarray) -> list[float]:
        calls.append(x.shape[0])
        return list(x[:, 0, 0] * 10)

    assert run_bucketed(pieces, enc, max_batch_samples=100) == [0, 10, 20, 30, 40]
    assert sorted(calls) == [1, 2, 2]
    with pytest.raises(ConfigError, match="max_batch_samples"):
        exact_length_buckets([1], max_batch_samples=0)


@settings(max_examples=200)
@given(st.integers(1, 5000), st.sampled_from([1, 3, 320]), st.integers(1, 40), st.integers(0, 10))
def test_chunk_plan_tiles_all_frames(n: int, hop: int, chunk: int, ctx: int) -> None:
    plan = plan_chunks(n, hop, chunk, ctx)
    total = -(-n // hop)
    frames = []
    for c in plan:
        assert c.start % hop == 0 and 0 <= c.start < c.stop <= n
        own = -(-(c.stop - c.start) // hop)  # frames the codec emits for this chunk
        assert 0 <= c.keep_start < c.keep_stop <= own
        assert c.keep_start <= ctx and c.keep_stop - c.keep_start <= chunk
        frames.extend(range(c.start // hop + c.keep_start, c.start // hop + c.keep_stop))
    assert frames == list(range(total))
    # stitching frame-index "codes" gives back the global frame indices
    outs = [np.arange(c.start // hop, c.start // hop + -(-(c.stop - c.start) // hop)) for c in plan]
    assert np.array_equal(stitch(outs, plan), np.arange(total))


def test_middle_chunks_share_one_length() -> None:
    n = 100 * 320 + 17
    plan = plan_chunks(n, 320, 10, 3)
    inner = [c.stop - c.start for c in plan[1:] if c.stop < n]
    assert len(inner) == 8 and set(inner) == {(10 + 2 * 3) * 320}
    assert plan_chunks(50, 320, 10, 3) == [plan_chunks(50, 320, 10, 3)[0]]
    with pytest.raises(ConfigError, match="chunk_frames"):
        plan_chunks(10, 1, 0, 0)


def _speechlike(sr: int = 16_000, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (env * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t))
            + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_si_sdr_is_scale_invariant_and_tracks_snr() -> None:
    x = _speechlike()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    noise *= np.linalg.norm(x - x.mean()) / np.linalg.norm(noise) / 10 ** (10 / 20)  # 10 dB SNR
    assert si_sdr(x, x) > 80
    assert si_sdr(x, 3 * x) > 80
    assert abs(si_sdr(x, x + noise) - 10) < 0.5
    assert si_sdr(x, x + 3 * noise) < si_sdr(x, x + noise)


def test_mel_distance_and_stoi_order_degradations() -> None:
    x = _speechlike()
    rng = np.random.default_rng(2)
    light = x + 0.05 * rng.standard_normal(len(x)).astype(np.float32)
    heavy = x + 0.5 * rng.standard_normal(len(x)).astype(np.float32)
    assert mel_distance(x, x, 16_000) == 0.0
    assert 0 < mel_distance(x, light, 16_000) < mel_distance(x, heavy, 16_000)
    assert stoi(x, x, 16_000) > 0.99
    assert stoi(x, heavy, 16_000) < stoi(x, light, 16_000)
    with pytest.raises(InputError):
        si_sdr(np.zeros(0), np.zeros(0))
    short = x[:2000]  # 125 ms: fewer frames than one STOI segment -> NaN, not pystoi's 1e-5
    assert np.isnan(stoi(short, short, 16_000))


def test_codebook_usage_and_corpus_summary() -> None:
    codes = [np.stack([np.arange(64) % 16, np.zeros(64, int)], axis=1).astype(np.uint16)]
    hist = codebook_histograms(codes, 16)
    use = codebook_usage(hist)
    assert use["used_fraction"] == [1.0, 1 / 16]
    assert use["entropy_bits"][0] == pytest.approx(4.0) and use["entropy_bits"][1] == 0.0
    info = CodecInfo(name="t", sample_rate=16_000, hop_length=320, frame_rate=50.0,
                     num_codebooks=2, codebook_size=16)
    acc = CorpusMetrics(info)
    x = _speechlike(seconds=64 * 320 / 16_000)
    acc.add("a", x, x + 0.01, codes[0])
    s = acc.summary()
    assert s["bitrate_nominal"] == 400.0 and s["bitrate_measured"] == pytest.approx(400.0)
    assert s["bitrate_entropy"] == pytest.approx(200.0) and s["num_cuts"] == 1.0


def test_frame_map_units_to_codes() -> None:
    # 50 Hz units -> 75 Hz EnCodec frames: each unit covers 1.5 code frames
    assert frame_map(4, 50, 75).tolist() == [0, 2, 3, 5]
    # code frame 1 is centred at 20 ms, the start of unit frame 1 (half-open intervals)
    assert resample_tokens(np.array([7, 8]), 50, 75, 3).tolist() == [7, 8, 8]
    assert frame_map(10, 75, 75).tolist() == list(range(10))
    assert frame_map(5, 50, 75, num_to=3).max() == 2
    with pytest.raises(ConfigError, match="from_rate"):
        frame_map(3, 0, 75)


def test_frame_map_is_exact_on_long_cuts() -> None:
    """DAC-44k's 44100/512 Hz against 50 Hz units over 10 hours: no float drift."""
    n = 50 * 36_000
    got = frame_map(n, 50, 44_100 / 512)
    i = np.array([0, 1, n // 3, n - 2, n - 1])
    ratio = Fraction(44_100, 512) / 50
    want = [int((Fraction(2 * int(k) + 1, 2)) * ratio) for k in i]
    assert got[i].tolist() == want
    assert np.all(np.diff(got) >= 0)
    assert frames_to_seconds(75, 75.0) == 1.0


def test_codec_info_and_factory_errors() -> None:
    from speechtok.tokenizers.acoustic import build_tokenizer

    info = CodecInfo(name="dac_44khz", sample_rate=44_100, hop_length=512, frame_rate=44_100 / 512,
                     num_codebooks=9, codebook_size=1024)
    assert info.to_dict()["bitrate"] == pytest.approx(44_100 / 512 * 90)
    with pytest.raises(ConfigError, match="EncodecConfig"):
        build_tokenizer(info)  # type: ignore[arg-type]
