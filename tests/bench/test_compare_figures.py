"""Issue 16's goal figures are derived from the comparison's test WERs."""

from __future__ import annotations

import pytest

from bench.bench_compare import backbone_figures


def test_best_variant_against_scratch_and_latent_against_the_cascade() -> None:
    figs = {"compare.latent.test_wer": 0.8, "compare.latent.whisper_decoder.test_wer": 0.7,
            "compare.latent_memory.whisper_decoder.test_wer": 0.4, "compare.token.test_wer": 1.0,
            "compare.token.whisper_decoder.test_wer": 1.2, "compare.text.whisper_decoder.test_wer": 0.3}
    notes: dict[str, str] = {}
    peers: dict[str, list[str]] = {}
    out = backbone_figures(figs, notes, peers)
    assert peers["compare.latent.whisper_decoder.rel_test_wer_vs_scratch"] == [
        "compare.latent_memory.whisper_decoder.test_wer", "compare.latent.test_wer"]
    assert all(p in figs for ps in peers.values() for p in ps)
    assert out["compare.latent.whisper_decoder.rel_test_wer_vs_scratch"] == pytest.approx(-0.5)
    assert "latent_memory" in notes["compare.latent.whisper_decoder.rel_test_wer_vs_scratch"]
    assert out["compare.token.whisper_decoder.rel_test_wer_vs_scratch"] == pytest.approx(0.2)
    assert out["compare.latent.whisper_decoder.test_wer_vs_text"] == pytest.approx(0.4 / 0.3)


def test_nothing_without_a_whisper_decoder_run() -> None:
    assert backbone_figures({"compare.latent.test_wer": 0.8, "compare.text.test_wer": 0.3}, {}) == {}
