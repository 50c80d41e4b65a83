"""`speechtok train {token,latent,cascade} RECIPE.yaml -o RUN`: the three trainer families."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from speechtok import hub
from speechtok.config import parse_sets
from speechtok.errors import SpeechtokError

FAMILIES = {
    "token": "audio-token LM: units/codes in an extended LLM vocabulary (speechtok.trainers.token)",
    "latent": "encoder + modality adapter + causal LM (speechtok.trainers.latent)",
    "cascade": "n-best, LLM rescoring and generative error correction (speechtok.trainers.cascade)",
}


def _run(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"speechtok.trainers.{args.family}")
    except ModuleNotFoundError as exc:
        raise SpeechtokError(f"trainer family {args.family!r} is not available: {exc}") from exc
    run_recipe = module.run_recipe

    return int(run_recipe(Path(args.recipe), Path(args.output), parse_sets(args.set)))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a text-cascade, latent or token model from a recipe")
    fam = parser.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for name, help_text in FAMILIES.items():
        p = fam.add_parser(name, help=help_text, description=help_text)
        p.add_argument("recipe", help="recipe YAML")
        p.add_argument("-o", "--output", required=True, help="run directory (checkpoints, metrics)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe value")
        hub.add_download_flag(p)
        p.set_defaults(func=_run)
