"""`speechtok demo [-o OUT]`: the embedded corpus through everything speechtok does so far.

Builds the espeak-ng demo corpus (offline) if it is not there, runs ``recipes/demo.yaml`` on
it (ingest, filterbanks, k-means units, Arrow shards), and prints a summary: counts, hours,
quarantined items, unit statistics. Then it runs a small comparison of the three integration
families (`speechtok.compare`, ``recipes/compare_demo.yaml``) into ``OUT/compare/``, with
``--workers`` family runs at once. Rerunning resumes / skips what is done in the pipeline.

Steps after the recipe (the comparison) plug in through `DEMO_STEPS`: each entry is a function
``(out_dir: Path, report: RunReport, workers: int) -> str | None`` called after the recipe ran;
its returned text is printed under the summary.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.commands.run import add_execution_flags, options_from_args, protect_main_module
from speechtok.compare import demo_step
from speechtok.config import parse_sets
from speechtok.errors import SpeechtokError
from speechtok.paths import ROOT
from speechtok.pipeline.report import RunReport
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, shard_path

#: Extra demo steps run after the recipe, in order (see module docstring).
DEMO_STEPS: list[Callable[[Path, RunReport, int], str | None]] = [demo_step]


def demo_recipe_path() -> Path:
    """``recipes/demo.yaml`` of the source tree speechtok runs from."""
    path = ROOT / "recipes" / "demo.yaml"
    if not path.is_file():
        raise SpeechtokError(f"the demo recipe {path} is missing; run speechtok demo from a "
                             "checkout of the speechtok repository (make setup installs it)")
    return path


def unit_stats(out_dir: Path, group: str) -> dict[str, Any]:
    """Statistics of a ``units.*`` group: frames, units used of K, perplexity, run length."""

    index = ShardIndex.load(out_dir)
    counts: np.ndarray | None = None
    frames, runs, vocab = 0, 0, 0
    for entry in index.entries(group):
        sf = ShardFile(shard_path(out_dir, entry.shard, group), entry, group=group, checksum=True)
        try:
            vocab = int(sf.meta.vocab_size or 0)
            if counts is None:
                counts = np.zeros(vocab, np.int64)
            for b in range(len(sf.batch_starts) - 1):
                units = sf.list_column(b, "units").values.astype(np.int64)  # (N,) all rows
                counts += np.bincount(units, minlength=vocab)[:vocab]
                frames += units.size
                runs += int(np.count_nonzero(np.diff(units))) + (1 if units.size else 0)
        finally:
            sf.close()
    if counts is None or frames == 0:
        return {"frames": 0}
    p = counts[counts > 0] / frames
    return {"frames": frames, "k": vocab, "used": int((counts > 0).sum()),
            "perplexity": float(math.exp(-(p * np.log(p)).sum())),
            "mean_run_frames": frames / max(runs, 1)}


def summary(out_dir: Path, report: RunReport) -> str:
    """The demo's closing summary (counts, hours, quarantine, unit statistics)."""
    lines = ["", "speechtok demo summary", "----------------------"]
    plan = report.plan
    lines.append(f"corpus: {report.ingest.get('source')} -> {plan.get('num_cuts')} cuts, "
                 f"{float(plan.get('audio_s') or 0) / 3600:.3f} h, "
                 f"{plan.get('num_shards')} shards of {plan.get('cuts_per_shard')} cuts")
    lines.append(f"quarantined: {len(report.quarantine)} (details in {out_dir}/quarantine.jsonl)")
    for s in report.stages:
        if s.group.startswith("units."):
            st = unit_stats(out_dir, s.group)
            if st.get("frames"):
                lines.append(
                    f"{s.group}: {st['frames']} frames, {st['used']}/{st['k']} units used, "
                    f"perplexity {st['perplexity']:.1f}, mean run {st['mean_run_frames']:.2f} frames")
    lines.append(f"shards: {out_dir}/shards, index: {out_dir}/index.json, "
                 f"report: {out_dir}/report.json")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    # lazy: the recipe's stage types and the runner bring torch, lhotse and faiss; `--help` needs none
    from speechtok.pipeline.recipe import load_recipe
    from speechtok.pipeline.runner import run

    protect_main_module()
    sets = parse_sets(args.set or [])
    if args.corpus:
        sets["corpus"] = args.corpus
    recipe = load_recipe(demo_recipe_path(), sets=sets)
    out = Path(args.output)
    report = run(recipe, out, options_from_args(args))
    print(report.summary())
    print(summary(out, report))
    for step in DEMO_STEPS:
        text = step(out, report, args.workers)
        if text:
            print(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the `demo` subcommand."""
    p = sub.add_parser("demo", help="run the demo recipe on the embedded espeak-ng corpus, then a small "
                                    "three-family comparison",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="demo-out", help="output directory (demo-out)")
    p.add_argument("--corpus", default=None,
                   help="another corpus instead of the embedded one (demo, demo:N or a path)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a var of recipes/demo.yaml (k=100, cuts_per_shard=20, ...)")
    add_execution_flags(p, workers=min(2, os.cpu_count() or 1))
    p.set_defaults(func=_run)
