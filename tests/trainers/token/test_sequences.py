"""Sequence builders: unit LM, multitask, Spirit-LM interleaving, codebook patterns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechtok.errors import InputError
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.token import sequences as sq

SPEC = VocabSpec(text_size=30, units={"km": 20}, codes={"enc": (4, 8)})
ENC = {ch: i + 4 for i, ch in enumerate(" ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def encode(text: str) -> list[int]:
    return [ENC[c] for c in text]


def decode(ids: np.ndarray) -> str:
    inv = {v: k for k, v in ENC.items()}
    return "".join(inv[int(i)] for i in ids)


def test_dedup_is_the_one_run_length_encoder() -> None:
    from speechtok.tokenizers.units import dedup

    u, d = dedup(np.array([3, 3, 1, 1, 1, 3, 2]))
    assert u.tolist() == [3, 1, 3, 2] and d.tolist() == [2, 3, 1, 1]
    assert dedup(np.array([], dtype=np.int64))[0].size == 0
    assert sq.dedup_runs is dedup


def test_unit_lm_dedup_and_markers() -> None:
    units = np.array([1, 1, 2, 2, 2, 5])
    full = sq.unit_lm_sequence(SPEC, "km", units)
    ded = sq.unit_lm_sequence(SPEC, "km", units, dedup=True)
    assert len(full) == 6 + 3 and len(ded) == 3 + 3
    assert full.ids[0] == SPEC.special_id("<|unitlm|>") and full.ids[-1] == SPEC.special_id("<|eos|>")
    assert SPEC.to_units("km", ded.ids[2:-1]).tolist() == [1, 2, 5]
    assert not full.loss_mask[:2].any() and full.loss_mask[2:].all()


def test_asr_tts_textlm_layout_and_loss_mask() -> None:
    units, text = np.array([4, 4, 7]), encode("HI")
    asr = sq.asr_sequence(SPEC, "km", units, text)
    s = SPEC.special_id
    assert asr.ids.tolist() == [s("<|asr|>"), s("<|speech|>"), *SPEC.unit_ids("km", np.array([4, 7])),
                                s("<|text|>"), *text, s("<|eos|>")]
    assert asr.loss_mask.tolist() == [False] * 5 + [True] * 3
    assert np.array_equal(asr.ids[:5], sq.asr_prompt(SPEC, "km", units))
    tts = sq.tts_sequence(SPEC, "km", units, text)
    assert tts.ids[0] == s("<|tts|>") and SPEC.to_units("km", tts.ids[tts.loss_mask][:-1]).tolist() == [4, 7]
    tlm = sq.text_lm_sequence(SPEC, text)
    assert decode(tlm.ids[tlm.loss_mask][:-1]) == "HI"
    with pytest.raises(InputError, match="units.km"):
        sq.asr_sequence(SPEC, "km", np.array([20]), text)
    with pytest.raises(InputError, match="text range"):
        sq.text_lm_sequence(SPEC, [SPEC.text_size + 1])


WORDS = [("WE", 0.10, 0.20), ("CALL", 0.35, 0.30), ("IT", 0.70, 0.10), ("BEAR", 0.85, 0.40)]


@pytest.mark.parametrize("seed", range(8))
def test_interleaving_matches_alignment(seed: int) -> None:
    fr = 50.0
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 20, size=70)  # 1.4 s at 50 Hz
    seq, spans = sq.interleave_sequence(SPEC, "km", units, fr, WORDS, encode, speech_ratio=0.5,
                                        mean_span_words=1.5, rng=np.random.default_rng(seed))
    # spans cover all words in order, alternate modality, and speech spans cover all frames between them
    assert spans[0].words[0] == 0 and spans[-1].words[1] == len(WORDS)
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.words[1] == b.words[0] and a.modality != b.modality
    for sp in spans:
        body = seq.ids[sp.tokens[0]:sp.tokens[1]]
        marker = seq.ids[sp.tokens[0] - 1]
        i, j = sp.words
        if sp.modality == "text":
            assert marker == SPEC.special_id("<|text|>")
            assert decode(body) == " ".join(w for w, _, _ in WORDS[i:j])
        else:
            assert marker == SPEC.special_id("<|speech|>")
            start = 0 if i == 0 else round(WORDS[i][1] * fr)
            stop = len(units) if j == len(WORDS) else round(WORDS[j][1] * fr)
            assert sp.frames == (start, stop)
            assert SPEC.to_units("km", body).tolist() == units[start:stop].tolist()
            # each word's own frames lie inside its span
            for w, st0, dur in WORDS[i:j]:
                assert start <= round(st0 * fr) and round((st0 + dur) * fr) <= stop, w
    assert seq.ids[-1] == SPEC.special_id("<|eos|>")


def test_interleave_ratio_is_respected_on_average() -> None:
    rng = np.random.default_rng(0)
    words = [(f"W{k}", k * 0.3, 0.2) for k in range(200)]
    for ratio in (0.2, 0.8):
        share = []
        for _ in range(20):
            spans = sq.choose_spans(len(words), speech_ratio=ratio, mean_span_words=4, rng=rng)
            share.append(sum(j - i for m, i, j in spans if m == "speech") / len(words))
        assert abs(np.mean(share) - ratio) < 0.1
    assert [m for m, _, _ in sq.choose_spans(5, speech_ratio=1.0, mean_span_words=2, rng=rng)] == ["speech"]


def test_interleave_rejects_unordered_alignment() -> None:
    with pytest.raises(InputError, match="out of order"):
        sq.interleave_sequence(SPEC, "km", np.zeros(10, dtype=int), 50.0, [("A", 0.1, 0.1), ("B", 0.05, 0.1)],
                               encode, rng=np.random.default_rng(0))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 12), seed=st.integers(0, 1000))
def test_codebook_patterns_round_trip(t: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, 8, size=(t, 4))
    flat = sq.flatten_codes(SPEC, "enc", codes)
    assert flat.shape == (t * 4,)
    np.testing.assert_array_equal(sq.unflatten_codes(SPEC, "enc", flat), codes)
    delayed = sq.delay_pattern(SPEC, "enc", codes)
    assert delayed.shape == (t + 3, 4)
    np.testing.assert_array_equal(sq.undelay_pattern(SPEC, "enc", delayed), codes)
    split = sq.valle_split(SPEC, "enc", codes)
    assert split.ar.shape == (t,) and split.nar.shape == (t, 3)
    np.testing.assert_array_equal(SPEC.to_codes("enc", np.c_[split.ar, split.nar].reshape(t, 4)), codes)


def test_delay_pattern_layout() -> None:
    codes = np.array([[1, 2, 3, 4], [5, 6, 7, 0]])
    d = sq.delay_pattern(SPEC, "enc", codes)
    pad = SPEC.special_id("<|pad_code|>")
    assert d[0].tolist() == [SPEC.code_ids("enc", codes)[0, 0], pad, pad, pad]
    assert d[3, 3] == SPEC.code_ids("enc", codes)[0, 3] and d[4, 3] == SPEC.code_ids("enc", codes)[1, 3]
    assert d[4, 0] == pad
