"""Runs every `bench/bench_*.py` (or one with `--only NAME`), each in its own process."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", help="run only bench/bench_NAME.py")
    args = parser.parse_args()
    names = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    if args.only:
        if args.only not in names:
            print(f"no benchmark {args.only!r}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [args.only]
    failed = []
    for name in names:
        print(f"== bench {name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=HERE.parent)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
