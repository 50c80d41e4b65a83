"""Token cards on speechocean762-train80 for every tokenizer with real weights here (Lyra v2,
k-means units of Whisper tiny.en states, k-means units of fbank with the centroid vocoder, dMel),
1 thread: `cards.<tokenizer>.<field>` for the numeric card fields (`speechtok.cards.card`).

Corpus: the first ``BENCH_CARDS_CUTS`` (default 12) utterances of speechocean762-train80 (sorted
ids); k-means (K=100) and dMel ranges are fitted on the same cuts. Cards and the comparison
table are also written to ``bench/results/cards/``.
"""

from __future__ import annotations

import os
import warnings

from bench.common import BENCH_DIR, SHARED, Fig, record, set_threads, timed

CUTS = int(os.environ.get("BENCH_CARDS_CUTS", "12"))
FIELDS = ("frame_rate", "num_codebooks", "vocab_size", "bitrate_bps", "rtf_per_core", "batch_invariance",
          "stoi", "si_sdr_db", "mel_distance", "dnsmos_ovrl", "dnsmos_ovrl_original", "speaker_similarity",
          "wer_resynth", "wer_original", "unit_perplexity")
UNITS = {"frame_rate": "Hz", "num_codebooks": "", "vocab_size": "", "bitrate_bps": "bit/s",
         "rtf_per_core": "CPU s / audio s", "batch_invariance": "fraction", "stoi": "", "si_sdr_db": "dB",
         "mel_distance": "", "dnsmos_ovrl": "MOS", "dnsmos_ovrl_original": "MOS", "speaker_similarity": "cosine",
         "wer_resynth": "fraction", "wer_original": "fraction", "unit_perplexity": ""}


def main() -> None:
    set_threads(1)
    warnings.filterwarnings("ignore")
    from speechtok.cards import (
        REAL_HERE,
        CardOptions,
        build_card,
        compare_cards,
        load_corpus,
        write_card,
    )

    corpus = SHARED / "data" / "speechocean762-train80"
    if not corpus.is_dir():
        raise SystemExit(f"bench_cards needs {corpus} (../shared); nothing measured")
    cuts = load_corpus(corpus, CUTS)
    out = BENCH_DIR / "results" / "cards"
    figures: dict[str, float | Fig] = {}
    notes: dict[str, str] = {}
    units: dict[str, str] = {}
    for name in REAL_HERE:
        with timed() as t:
            card = build_card(name, cuts, CardOptions(shared=SHARED))
        write_card(card, out / name)
        key = name.replace("-", "_")
        for f in FIELDS:
            if card.get(f) is not None:
                figures[f"cards.{key}.{f}"] = Fig(float(card[f]), timing=t)
                units[f"cards.{key}.{f}"] = UNITS[f]
        notes[f"cards.{key}.rtf_per_core"] = f"{card['weights_note']}; {card['num_cuts']} cuts, {card['audio_s']} s"
    compare_cards([out / n for n in REAL_HERE], out / "compare")
    record(figures, notes, settings={"corpus": "speechocean762-train80", "cuts": CUTS}, units=units,
           code=["speechtok/cards/card.py", "speechtok/cards/registry.py", "speechtok/cards/quality.py",
                 "speechtok/cards/corpus.py"])


if __name__ == "__main__":
    main()
