"""Speed-only token cards for the codecs whose weights are not here (EnCodec 24 kHz, DAC 16 kHz,
Mimi, X-Codec), at their released sizes with random weights, 1 thread, on the first
``BENCH_CARDS_SPEED_CUTS`` (default 6) utterances of speechocean762-train80:
`cards.<codec>.rtf_per_core` and `cards.<codec>.batch_invariance`. The cards are written to
``bench/results/cards/<codec>/`` beside the real-weight ones (`bench_cards.py`), and they say
"random weights: speed only". `scripts/cards_table.py` puts all cards in one table.
"""

from __future__ import annotations

import os
import warnings

from bench.common import BENCH_DIR, SHARED, Fig, record, set_threads, timed

CUTS = int(os.environ.get("BENCH_CARDS_SPEED_CUTS", "6"))


def main() -> None:
    set_threads(1)
    warnings.filterwarnings("ignore")
    from speechtok.cards import CardOptions, build_card, load_corpus, write_card
    from speechtok.cards.registry import RANDOM_HERE

    corpus = SHARED / "data" / "speechocean762-train80"
    if not corpus.is_dir():
        raise SystemExit(f"bench_cards_speed needs {corpus} (../shared); nothing measured")
    cuts = load_corpus(corpus, CUTS)
    figures: dict[str, float | Fig] = {}
    notes: dict[str, str] = {}
    for name in RANDOM_HERE:
        with timed() as t:
            card = build_card(name, cuts, CardOptions(shared=SHARED), quality=False)
        write_card(card, BENCH_DIR / "results" / "cards" / name)
        key = name.replace("-", "_")
        figures[f"cards.{key}.rtf_per_core"] = Fig(card["rtf_per_core"], timing=t, unit="CPU s / audio s")
        figures[f"cards.{key}.batch_invariance"] = Fig(card["batch_invariance"], timing=t, unit="fraction")
        notes[f"cards.{key}.rtf_per_core"] = (f"{card['weights']}: {card['weights_note']}; "
                                              f"{card['num_cuts']} cuts, {card['audio_s']} s")
    record(figures, notes, settings={"corpus": "speechocean762-train80", "cuts": CUTS},
           code=["speechtok/cards/card.py", "speechtok/cards/registry.py", "speechtok/cards/corpus.py"])


if __name__ == "__main__":
    main()
