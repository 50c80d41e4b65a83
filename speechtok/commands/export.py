"""`speechtok export OUT --to parquet|hf|lhotse|fairseq|memmap -o DEST [--group G] [--overwrite]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from speechtok.exports.formats import FORMATS, export_output


def _run(args: argparse.Namespace) -> int:
    n = export_output(Path(args.out_dir), args.to, Path(args.output),
                      groups=args.group or None, split=args.split, overwrite=args.overwrite)
    print(f"speechtok export: wrote {n} rows as {args.to} to {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="export shards to Parquet, HF datasets, lhotse, fairseq, a uint16 memmap or SLAM-LLM JSONL",
        description="Export an output directory: parquet (one file per shard), hf (a directory "
        "datasets.load_from_disk reads), lhotse (cuts.jsonl.gz with custom fields), fairseq "
        "(SPLIT.tsv, SPLIT.km, dict.km.txt), memmap (nanoGPT-style SPLIT.bin + offsets) or slam "
        "(SLAM-LLM SPLIT.jsonl: key, source, target; segments cut to DEST/audio).")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--to", required=True, choices=FORMATS, help="target format")
    parser.add_argument("-o", "--output", required=True, help="destination directory")
    parser.add_argument("--group", action="append", metavar="GROUP",
                        help="field group to export (repeatable; default all; fairseq/memmap: "
                        "the one token group)")
    parser.add_argument("--split", default="train", help="split name of fairseq/memmap files")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty destination (the new export is complete before "
                        "the old one is removed); without it a non-empty destination is refused")
    parser.set_defaults(func=_run)
