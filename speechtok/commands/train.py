"""`speechtok train {token,latent,cascade} RECIPE.yaml -o RUN`: the three trainer families."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from speechtok import hub
from speechtok.config import parse_sets
from speechtok.trainers import cascade, latent, token

#: family -> (help line, its `run_recipe(recipe, run_dir, sets) -> exit code`); each family's
#: package imports its trainer (torch, transformers) only when `run_recipe` is called.
FAMILIES: dict[str, tuple[str, Callable[[Path, Path, Mapping[str, Any]], int]]] = {
    "token": ("audio-token LM: units/codes in an extended LLM vocabulary (speechtok.trainers.token)",
              token.run_recipe),
    "latent": ("encoder + modality adapter + causal LM (speechtok.trainers.latent)", latent.run_recipe),
    "cascade": ("n-best, LLM rescoring and generative error correction (speechtok.trainers.cascade)",
                cascade.run_recipe),
}


def _run(args: argparse.Namespace) -> int:
    run_recipe = FAMILIES[args.family][1]
    return int(run_recipe(Path(args.recipe), Path(args.output), parse_sets(args.set)))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a text-cascade, latent or token model from a recipe")
    fam = parser.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name, (help_text, _) in FAMILIES.items():
        p = fam.add_parser(name, help=help_text, description=help_text)
        p.add_argument("recipe", help="recipe YAML")
        p.add_argument("-o", "--output", required=True, help="run directory (checkpoints, metrics)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe value")
        hub.add_download_flag(p)
        p.set_defaults(func=_run)
