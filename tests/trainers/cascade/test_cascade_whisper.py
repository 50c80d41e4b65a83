"""Whisper n-best through CTranslate2 with the real tiny.en weights, batched vs one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.models.nbest import Utterance, load_audio, read_jsonl
from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.metrics import normalize_text


@pytest.fixture(scope="module")
def decoder(whisper_ct2_dir: Path) -> WhisperNBest:
    return WhisperNBest(WhisperNBestConfig(model_dir=whisper_ct2_dir, beam_size=5, num_hypotheses=5,
                                           batch_size=2, threads=1))


@pytest.fixture(scope="module")
def two_utts(speechocean_dir: Path) -> list[Utterance]:
    utts = read_kaldi_dir(speechocean_dir)
    return [u for u in utts if u.id in ("000010011", "000010035")]


def test_batched_equals_one_at_a_time(decoder: WhisperNBest, two_utts: list[Utterance]) -> None:
    waves = [load_audio(u.path) for u in two_utts]
    batched = decoder.decode_batch(waves)
    single = decoder.decode_batch(waves[1:])[0]
    assert len(batched) == 2 and all(len(h) == 5 for h in batched)
    assert [h.text for h in batched[1]] == [h.text for h in single]
    np.testing.assert_allclose([h.am_score for h in batched[1]], [h.am_score for h in single], atol=1e-3)
    for hyps in batched:
        norm = [h.am_score_norm for h in hyps]
        assert norm == sorted(norm, reverse=True)  # beam order = length-normalised score order
        for h in hyps:
            assert h.am_score < 0 and h.num_tokens > 0
            assert h.am_score == pytest.approx(h.am_score_norm * h.num_tokens)
        assert [h.rank for h in hyps] == list(range(5))
    # Real speech, real weights: "ZERO THREE FIVE ONE" is in the 5-best.
    assert "zero three five one" in [normalize_text(h.text) for h in batched[1]]


def test_decode_utterances_caches_and_resumes(
    decoder: WhisperNBest, two_utts: list[Utterance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "nb.jsonl"
    first = list(decoder.decode_utterances(two_utts[:1], cache=cache))
    assert first[0].reference == "WE CALL IT BEAR" and first[0].speaker == "0001"
    assert [nb.id for nb in read_jsonl(cache)] == ["000010011"]

    calls: list[int] = []
    real = decoder.decode_batch
    monkeypatch.setattr(decoder, "decode_batch", lambda w: calls.append(len(w)) or real(w))
    again = list(decoder.decode_utterances(two_utts, cache=cache))
    assert calls == [1]  # only the utterance missing from the cache was decoded
    assert again[0] == first[0] and [nb.id for nb in again] == [u.id for u in two_utts]
    assert len(list(read_jsonl(cache))) == 2


def test_bad_config_and_input(whisper_ct2_dir: Path, decoder: WhisperNBest) -> None:
    with pytest.raises(ConfigError, match="num_hypotheses"):
        WhisperNBestConfig(model_dir=whisper_ct2_dir, beam_size=2, num_hypotheses=5).validate()
    with pytest.raises(ConfigError, match="model_dir"):
        WhisperNBestConfig(model_dir=whisper_ct2_dir / "nope").validate()
    with pytest.raises(InputError, match="at most 30 s"):
        decoder.decode_batch([np.zeros(16000 * 31, dtype=np.float32)])
    with pytest.raises(InputError, match="mono"):
        decoder.decode_batch([np.zeros((2, 16000), dtype=np.float32)])
