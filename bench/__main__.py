"""Runs every `bench/bench_*.py` (or one with `--only NAME`), each in its own process, then
regenerates the tables; `--check` fails when a figure is stale or unpeered; `--report` only
regenerates the tables."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench import check, report
from bench.common import NAME_ENV, RUN_ENV, begin_run, end_run
from bench.provenance import now_iso

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", help="run only bench/bench_NAME.py")
    parser.add_argument("--check", action="store_true",
                        help="run nothing; exit 1 when a figure is stale, unpeered or missing")
    parser.add_argument("--report", action="store_true",
                        help="run nothing; regenerate bench/README.md and the docs' BENCH blocks")
    args = parser.parse_args()
    if args.check:
        return check.main()
    if args.report:
        return report.main()
    names = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    if args.only:
        if args.only not in names:
            print(f"no benchmark {args.only!r}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [args.only]
    failed = []
    for name in names:
        print(f"== bench {name}", flush=True)
        rid = f"{now_iso()}-{name}-{os.getpid()}"
        begin_run(name, rid)
        env = {**os.environ, RUN_ENV: rid, NAME_ENV: name}
        rc = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=HERE.parent, env=env)
        end_run(name, rid, rc == 0)
        if rc != 0:
            failed.append(name)
    report.main()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
