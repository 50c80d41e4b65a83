"""`speechtok verify OUT`: recompute checksums and check every shard; non-zero exit if bad."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechtok.shards.verify import verify_output


def _run(args: argparse.Namespace) -> int:
    rep = verify_output(Path(args.out_dir), checksum=not args.no_checksum, sample=args.sample)
    for path, note in rep.warnings:
        print(f"warning: {path}: {note}", file=sys.stderr)
    for path, problem in rep.problems:
        print(f"BAD {path}: {problem}")
    status = "OK" if rep.ok else f"FAILED ({len(rep.problems)} problems)"
    print(f"speechtok verify: {status}: {rep.files} shard files, {rep.bytes / 1e6:.2f} MB checked"
          + ("" if not args.no_checksum else " (checksums skipped)"))
    return 0 if rep.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "verify", help="recompute checksums and check schemas of every shard",
        description="Check every shard file of OUT against its index entry (sha256, size, "
        "schema, version, fingerprint, rows, ids aligned with cuts, units/codes ids below the "
        "vocab_size) and report files in flight "
        "or uncommitted. Exits 1 naming every bad shard.")
    parser.add_argument("out_dir", help="output directory")
    parser.add_argument("--no-checksum", action="store_true",
                        help="skip the sha256 recomputation (structure checks only)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="check the files of N random data shards only (quick look at a "
                             "large output; index-level checks still cover every shard)")
    parser.set_defaults(func=_run)
