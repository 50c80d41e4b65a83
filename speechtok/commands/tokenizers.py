"""`speechtok tokenizers card NAME [--corpus SHARDS] -o DIR` and
`speechtok tokenizers compare CARD_DIR... -o DIR`: token cards (see `speechtok.cards`).

`--corpus` is a speechtok shard output (its `cuts` group) or a Kaldi-style directory; without
it, the card uses speechocean762-train80 from ../shared. Encoding runs on 1 thread so that
`rtf_per_core` is per core.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speechtok.cards import CardOptions, build_card, compare_cards, load_corpus, write_card
from speechtok.cards.registry import NAMES
from speechtok.errors import InputError
from speechtok.paths import shared_dir


def _card(args: argparse.Namespace) -> int:
    shared = Path(args.shared) if args.shared else shared_dir()
    corpus = args.corpus or str(shared / "data" / "speechocean762-train80")
    if not Path(corpus).exists():
        raise InputError(corpus, "corpus not found; pass --corpus SHARDS (a speechtok output) or a Kaldi dir")
    _one_thread()
    cuts = load_corpus(corpus, args.max_cuts)
    opts = CardOptions(shared=shared, kmeans_dir=args.kmeans, k=args.k)
    labels = _read_labels(Path(args.labels)) if args.labels else None
    card = build_card(args.name, cuts, opts, quality=not args.speed_only, frame_labels=labels)
    out = write_card(card, args.output)
    print((out / "card.md").read_text())
    return 0


def _read_labels(path: Path) -> dict[str, tuple[list[str], float]]:
    """JSON lines ``{"id": ..., "frame_labels": [...], "frame_rate": 100}`` -> id -> (labels, rate)."""

    out: dict[str, tuple[list[str], float]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[str(rec["id"])] = ([str(x) for x in rec["frame_labels"]], float(rec.get("frame_rate", 100.0)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{n}", f"must be JSON with id and frame_labels ({exc})") from exc
    return out


def _compare(args: argparse.Namespace) -> int:
    out = compare_cards(args.cards, args.output)
    print((out / "table.md").read_text())
    return 0


def _one_thread() -> None:
    # lazy: torch takes seconds to import
    import torch

    torch.set_num_threads(1)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tokenizers", help="token cards: cost and quality of every tokenizer")
    cmds = parser.add_subparsers(dest="tokenizers_command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser("card", help="one tokenizer's card (md + json + png)")
    p.add_argument("name", choices=NAMES, help="tokenizer")
    p.add_argument("--corpus", help="shard output dir or Kaldi dir (default: ../shared speechocean762-train80)")
    p.add_argument("--max-cuts", type=int, default=20, help="cuts to measure on (default 20)")
    p.add_argument("--kmeans", help="fitted KMeansModel dir for kmeans-* (default: fit K=--k on the corpus)")
    p.add_argument("--k", type=int, default=100, help="clusters when fitting k-means on the corpus")
    p.add_argument("--shared", help="the ../shared folder (models); default: speechtok.paths")
    p.add_argument("--labels", help='JSON lines {"id", "frame_labels": [...], "frame_rate": 100} for PNMI/purity')
    p.add_argument("--speed-only", action="store_true", help="skip resynthesis and ASR figures")
    p.add_argument("-o", "--output", required=True, help="card directory")
    p.set_defaults(func=_card)
    c = cmds.add_parser("compare", help="one table across cards (md + json + png)")
    c.add_argument("cards", nargs="+", help="card directories (or card.json files)")
    c.add_argument("-o", "--output", required=True, help="table directory")
    c.set_defaults(func=_compare)
