"""`speechtok inspect OUT`: schema, provenance, rows, hours, tokens per second, id histograms."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from speechtok.shards.inspect import format_summary, inspect_output


def _run(args: argparse.Namespace) -> int:
    summary = inspect_output(Path(args.out_dir), top_k=args.top_k)
    print(json.dumps(summary, indent=1, sort_keys=True) if args.json else format_summary(summary))
    corrupt = sorted(g for g, info in summary["groups"].items() if info.get("out_of_vocab"))
    if corrupt:
        print(f"speechtok inspect: groups {corrupt} hold ids >= their vocab_size (corrupt); run `speechtok "
              "verify`", file=sys.stderr)
    return 1 if corrupt else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect", help="summarise an output directory (schema, provenance, hours, tokens)",
        description="Summarise an output directory: per field group its schema, provenance "
        "(stage, config, fingerprint), shards, rows, bytes; hours of audio; tokens per second "
        "and the most frequent unit/code ids. Exits 1 when a units or codes group holds an id "
        "outside its vocabulary (a corrupt payload).")
    parser.add_argument("out_dir", help="output directory (holds index.json and shards/)")
    parser.add_argument("--top-k", type=int, default=10, help="ids listed per histogram")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=_run)
