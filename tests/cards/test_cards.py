"""Token cards on a few synthetic cuts: fields, files (md/json/png), comparison table, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechtok.cards import CardCut, CardOptions, build_card, compare_cards, write_card
from speechtok.cards.registry import RANDOM, CardTokenizer, build_card_tokenizer
from speechtok.errors import ConfigError, InputError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


def _cuts(n: int = 3) -> list[CardCut]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        t = np.arange(16_000 + 4_000 * i) / 16_000
        w = 0.3 * np.sin(2 * np.pi * (140 + 90 * i) * t * (1 + t)) + 0.02 * rng.standard_normal(len(t))
        out.append(CardCut(f"c{i}", w.astype(np.float32), "", f"s{i % 2}"))
    return out


def test_dmel_card_files_and_fields(tmp_path: Path) -> None:
    cuts = _cuts()
    card = build_card("dmel", cuts, CardOptions(shared=tmp_path))
    assert card["weights"] == "fitted on the corpus" and card["num_codebooks"] == 40
    assert card["bitrate_bps"] == pytest.approx(100 * 40 * 4)  # 100 Hz x 40 channels x 4 bits
    assert card["batch_invariance"] == 1.0 and card["rtf_per_core"] > 0
    assert 0.0 < card["stoi"] <= 1.0 and card["mel_distance"] > 0
    assert card["wer_resynth"] is None  # no transcripts
    assert -1.0 <= card["speaker_similarity"] <= 1.0 and 1.0 <= card["dnsmos_ovrl"] <= 5.0
    out = write_card(card, tmp_path / "dmel")
    assert json.loads((out / "card.json").read_text())["name"] == "dmel"
    assert "# Token card: dmel" in (out / "card.md").read_text()
    assert (out / "card.png").read_bytes()[:4] == b"\x89PNG"
    # a speed-only card from a stand-in random-weight adapter; then one table across both
    fake = CardTokenizer(name="fake", family="acoustic", frame_rate=50.0, num_codebooks=2, vocab_size=4,
                         causal="causal", weights=RANDOM, weights_note="test",
                         encode=lambda ws: [np.zeros((len(w) // 320, 2), np.int64) for w in ws])
    speed = build_card("fake", cuts, CardOptions(shared=tmp_path), tokenizer=fake)
    assert speed["stoi"] is None and "speed only" in speed["notes"]["quality"]
    write_card(speed, tmp_path / "fake")
    table = compare_cards([tmp_path / "dmel", tmp_path / "fake" / "card.json"], tmp_path / "cmp")
    md = (table / "table.md").read_text()
    assert md.count("\n") == 4 and "| dmel |" in md and "| fake |" in md and "n/a" in md
    assert (table / "table.png").is_file() and len(json.loads((table / "table.json").read_text())) == 2


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be one of"):
        build_card_tokenizer("mp3", [], CardOptions(shared=tmp_path))
    with pytest.raises(InputError, match="no card.json"):
        compare_cards([tmp_path], tmp_path / "out")
    with pytest.raises(InputError, match="no cut"):
        build_card("dmel", [], CardOptions(shared=tmp_path))


def test_cli_registers_card_and_compare() -> None:
    from speechtok.cli import build_parser

    p = build_parser()
    args = p.parse_args(["tokenizers", "card", "lyra", "--corpus", "x", "-o", "y"])
    assert args.name == "lyra" and args.corpus == "x"
    args = p.parse_args(["tokenizers", "compare", "a", "b", "-o", "t"])
    assert args.cards == ["a", "b"]


def test_frame_labels_give_pnmi_retimed_to_token_frames(tmp_path: Path) -> None:
    """Units at 50 Hz that switch 0 -> 1 at the middle; labels at 100 Hz that switch a -> b at
    the same time: PNMI and purities are 1 (labels re-timed by frame centres). Shuffled labels
    score less."""
    cuts = _cuts(2)

    def encode(ws: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for w in ws:
            t = len(w) // 320
            out.append((np.arange(t) >= t // 2).astype(np.int64)[:, None])
        return out

    unit_tok = CardTokenizer(name="u", family="semantic", frame_rate=50.0, num_codebooks=1, vocab_size=2,
                             causal="frame-local", weights="fitted on the corpus", weights_note="test",
                             encode=encode)
    labels = {}
    for c in cuts:
        t = len(c.wave) // 320
        labels[c.id] = (["a"] * (2 * (t // 2)) + ["b"] * (2 * (t - t // 2)), 100.0)
    card = build_card("u", cuts, CardOptions(shared=tmp_path), tokenizer=unit_tok, frame_labels=labels)
    assert card["pnmi"] == pytest.approx(1.0) and card["phone_purity"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = {k: (list(rng.permutation(v[0])), v[1]) for k, v in labels.items()}
    worse = build_card("u", cuts, CardOptions(shared=tmp_path), tokenizer=unit_tok, frame_labels=noisy)
    assert worse["pnmi"] < 0.5 and card["unit_perplexity"] > 1.0
