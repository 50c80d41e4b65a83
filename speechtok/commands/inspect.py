"""`speechtok inspect OUT`: schema, provenance, rows, hours, tokens per second, id histograms."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speechtok.shards.inspect import format_summary, inspect_output


def _run(args: argparse.Namespace) -> int:
    summary = inspect_output(Path(args.out_dir), top_k=args.top_k)
    print(json.dumps(summary, indent=1, sort_keys=True) if args.json else format_summary(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect", help="summarise an output directory (schema, provenance, hours, tokens)",
        description="Summarise an output directory: per field group its schema, provenance "
        "(stage, config, fingerprint), shards, rows, bytes; hours of audio; tokens per second "
        "and the most frequent unit/code ids.")
    parser.add_argument("out_dir", help="output directory (holds index.json and shards/)")
    parser.add_argument("--top-k", type=int, default=10, help="ids listed per histogram")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=_run)
