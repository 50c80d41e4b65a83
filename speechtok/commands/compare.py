"""`speechtok compare RECIPE.yaml -o REPORT [--set key=value ...]`: text vs latent vs token families."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechtok import hub
from speechtok.compare import run_compare
from speechtok.config import parse_sets


def _run(args: argparse.Namespace) -> int:

    return run_compare(Path(args.recipe), Path(args.output), parse_sets(args.set))


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the `compare` subcommand."""
    p = sub.add_parser(
        "compare", help="train and score the text, latent and token families on one split",
        description="Trains and evaluates the text cascade, the latent adapter model and the audio-token LM on "
                    "the same speaker-disjoint split with the same LLM backbone and step budget; writes "
                    "REPORT/compare.md, compare.json and PNG charts. Exit code 1 when a family failed.")
    p.add_argument("recipe", help="comparison recipe (recipes/compare_*.yaml)")
    p.add_argument("-o", "--output", required=True, help="report directory")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe key (llm.hidden_size=64, budget.steps=50, "
                        "families.text.set.ger.llm.mode=lora, families.token.enabled=false)")
    hub.add_download_flag(p)
    p.set_defaults(func=_run)
