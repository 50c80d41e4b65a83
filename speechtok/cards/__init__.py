"""Token cards: one place that says what a tokenizer costs and keeps (frame rate, bitrate,
codebooks, causality, measured batch invariance and RTF per core, and on a corpus: resynthesis
STOI / SI-SDR / mel distance / DNSMOS / speaker similarity / Whisper WER, unit statistics).

Sits above `trainers` (it uses the Whisper transcriber and the WER metric) and below
`commands`. CLI: `speechtok tokenizers card NAME` and `speechtok tokenizers compare`.
"""

from speechtok.cards.card import build_card, compare_cards, write_card
from speechtok.cards.corpus import CardCut, load_corpus
from speechtok.cards.registry import NAMES, REAL_HERE, CardOptions, CardTokenizer

__all__ = ["NAMES", "REAL_HERE", "CardCut", "CardOptions", "CardTokenizer", "build_card",
           "compare_cards", "load_corpus", "write_card"]
