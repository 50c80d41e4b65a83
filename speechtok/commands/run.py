"""`speechtok run RECIPE.yaml -o OUT`: run a recipe's stages over sharded cuts, resumably."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from speechtok import hub
from speechtok.config import parse_sets

if TYPE_CHECKING:
    from speechtok.pipeline.runner import RunOptions

_EPILOG = """\
examples:
  speechtok run recipes/demo.yaml -o work/demo
  speechtok run recipes/demo.yaml -o work/so --set corpus=../shared/data/speechocean762-train80 \\
      --set k=100 --workers 2
  speechtok run R.yaml -o OUT --executor ray --workers 8         # local Ray (127.0.0.1)
  RAY_ADDRESS=ray://head:10001 speechtok run R.yaml -o OUT --executor ray --workers 64

Slurm job array (a stage with a fit, e.g. k-means, is fitted once):
  speechtok run R.yaml -o OUT --until cuts                                  # once
  speechtok run R.yaml -o OUT --until fbank --shard-index $SLURM_ARRAY_TASK_ID --num-shards 64
  speechtok run R.yaml -o OUT --fit-only                                    # once
  speechtok run R.yaml -o OUT --shard-index $SLURM_ARRAY_TASK_ID --num-shards 64

Failures: a bad cut is quarantined (OUT/quarantine.jsonl) and the run goes on; an I/O error
or a file gone since ingest is retried (--retries, --retry-backoff), then the shard fails,
nothing of it is committed and the run exits non-zero naming the cut; a bug in stage code
stops the run with its traceback. After fixing a cause that made cuts quarantined:
  speechtok run R.yaml -o OUT --retry-quarantined unreadable

Rerunning the same command resumes (committed shards are skipped). A changed config is
refused; write to a new -o, or pass --overwrite-stage NAME to replace that stage's output.
Writes OUT/shards/*.arrow, OUT/index.json, OUT/quarantine.jsonl, OUT/report.json.
"""


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The `RunOptions` of parsed `run`/`demo` flags."""
    # lazy: the runner brings torch, lhotse and faiss (every stage type); `speechtok --help` needs none
    from speechtok.pipeline.runner import RunOptions

    return RunOptions(
        executor=args.executor, workers=args.workers, threads=args.threads,
        fit_threads=args.fit_threads,
        shard_index=getattr(args, "shard_index", 0), num_shards=getattr(args, "num_shards", 1),
        until=getattr(args, "until", None), fit_only=getattr(args, "fit_only", False),
        overwrite_stages=tuple(getattr(args, "overwrite_stage", None) or ()),
        ray_address=args.ray_address, progress=not args.no_progress,
        retries=getattr(args, "retries", 3),
        retry_backoff_s=getattr(args, "retry_backoff", 1.0),
        retry_quarantined=(None if getattr(args, "retry_quarantined", None) is None
                           else tuple(args.retry_quarantined)),
    )


def add_execution_flags(p: argparse.ArgumentParser, *, workers: int = 1) -> None:
    """Flags shared by `run` and `demo`: executor, workers, threads, Ray address, progress."""
    p.add_argument("--executor", choices=("local", "ray", "inline"), default="local",
                   help="local process pool (default), Ray, or inline (this process; debugging)")
    p.add_argument("--workers", type=int, default=workers,
                   help=f"parallel shard jobs, one process each (default {workers})")
    p.add_argument("--threads", type=int, default=1, help="torch/faiss threads per job (default 1)")
    p.add_argument("--fit-threads", type=int, default=1,
                   help="threads of corpus-level fits such as k-means (default 1; keep it fixed "
                        "between runs that must give identical centroids)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster address (default: $RAY_ADDRESS, else a private local "
                        "instance bound to 127.0.0.1 without dashboard)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")


def protect_main_module() -> None:
    """Keeps pool workers from re-running the console script.

    The ``speechtok`` console script has no ``if __name__ == "__main__"`` guard, and
    multiprocessing's forkserver/spawn workers import the main module by its path. Without a
    path (``__file__``) they skip that; nothing else reads it after start-up.
    """
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and hasattr(main, "__file__"):
        del main.__file__


def _run(args: argparse.Namespace) -> int:
    # lazy: the recipe's stage types and the runner bring torch, lhotse and faiss; `--help` needs none
    from speechtok.pipeline.plan import plan_run
    from speechtok.pipeline.recipe import load_recipe
    from speechtok.pipeline.runner import run

    protect_main_module()
    recipe = load_recipe(Path(args.recipe), sets=parse_sets(args.set or []))
    if args.plan:
        plan = plan_run(recipe, Path(args.output))
        print(json.dumps(plan.to_json(), indent=1) if args.json else plan.summary())
        return 0
    report = run(recipe, Path(args.output), options_from_args(args))
    print(report.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the `run` subcommand."""
    p = sub.add_parser("run", help="run a YAML recipe of stages over sharded cuts (resumable)",
                       description=__doc__, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="the YAML recipe (e.g. recipes/demo.yaml)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe var (corpus=PATH, k=100) or a field "
                        "(ingest.sample_rate=8000, shards.cuts_per_shard=50, STAGE.KEY=VALUE)")
    add_execution_flags(p)
    hub.add_download_flag(p)
    p.add_argument("--shard-index", type=int, default=0,
                   help="run only data shards j with j %% num_shards == shard_index (job arrays)")
    p.add_argument("--num-shards", type=int, default=1, help="number of array tasks (default 1)")
    p.add_argument("--until", default=None, metavar="STAGE",
                   help="stop after this stage (ingest, cuts, or a stage name)")
    p.add_argument("--fit-only", action="store_true",
                   help="only fit the stages that need a fit (after array tasks ran their inputs)")
    p.add_argument("--overwrite-stage", action="append", metavar="NAME",
                   help="replace this stage's committed output made with another config "
                        "(and every later stage that depends on it); repeatable")
    p.add_argument("--plan", action="store_true",
                   help="print, without running, the shards, cuts and hours per stage, the "
                        "estimated CPU/GPU hours and the bytes of each group (reads the "
                        "ingested manifest only)")
    p.add_argument("--json", action="store_true", help="with --plan: print the plan as JSON")
    p.add_argument("--retries", type=int, default=3,
                   help="tries in all for an environment error (I/O error, a file gone since "
                        "ingest, out of memory) before the shard fails (default 3)")
    p.add_argument("--retry-backoff", type=float, default=1.0, metavar="SECONDS",
                   help="sleep before the first retry, doubled before each later one (default 1)")
    p.add_argument("--retry-quarantined", nargs="*", metavar="REASON", default=None,
                   help="reprocess committed shards holding cuts quarantined for these reasons "
                        "(none given: any reason), e.g. `unreadable` after fixing a mount; the "
                        "shards of later stages built on them are redone too")
    p.set_defaults(func=_run)
