"""Puts every token card the benchmarks wrote (`bench/results/cards/<name>/card.json`, from
`python -m bench --only cards` and `--only cards_speed`) into one comparison table
(`bench/results/cards/compare/`, `speechtok.cards.compare_cards`) and copies it into the
``<!-- CARDS:BEGIN -->`` block of `docs/sections/acoustic.md`, so the README quotes a generated
table, never typed numbers.

Run: `.venv/bin/python scripts/cards_table.py` (after the cards benchmarks).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "bench" / "results" / "cards"
TABLE = CARDS / "compare" / "table.md"
SECTION = ROOT / "docs" / "sections" / "acoustic.md"
BLOCK = re.compile(r"(<!-- CARDS:BEGIN -->\n)(.*?)(<!-- CARDS:END -->)", re.S)


def main() -> int:
    from speechtok.atomic import write_text
    from speechtok.cards import NAMES, compare_cards

    cards = [CARDS / n for n in NAMES if (CARDS / n / "card.json").is_file()]
    if not cards:
        print(f"no card under {CARDS}: run `python -m bench --only cards` first", file=sys.stderr)
        return 1
    compare_cards(cards, TABLE.parent)
    text = SECTION.read_text()
    if not BLOCK.search(text):
        print(f"{SECTION} has no <!-- CARDS:BEGIN --> ... <!-- CARDS:END --> block", file=sys.stderr)
        return 1
    table = TABLE.read_text()
    write_text(SECTION, BLOCK.sub(lambda m: m.group(1) + table + m.group(3), text))
    print(f"filled the cards table of {SECTION.relative_to(ROOT)} from {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
