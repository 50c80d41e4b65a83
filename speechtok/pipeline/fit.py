"""Corpus-level fits (e.g. k-means centroids) of stages that need one, resumable.

The fit runs in ``OUT/models/.NAME.fitting/`` (its checkpoints survive a kill, and a rerun with
the same inputs resumes them), then ``fit.json`` (inputs fingerprint + model checksum) is
written and the directory is renamed to ``OUT/models/NAME/``: a model directory exists only
once complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechtok import atomic
from speechtok.errors import InputError
from speechtok.faults import maybe_fault
from speechtok.pipeline.job import set_worker_threads
from speechtok.pipeline.report import StageStats
from speechtok.pipeline.stage import FitContext, StageBase
from speechtok.shards.reader import ShardDataset


def fit_into(stage: StageBase, fit_fp: str, out: Path, model_dir: Path, *,
             fit_threads: int) -> StageStats:
    """Fits `stage` on the committed upstream shards of `out` into `model_dir`.

    Args:
        stage: the stage (``needs_fit()``); its model stays loaded afterwards.
        fit_fp: fingerprint of the fit's inputs (``stage.fit_fingerprint(upstream)``).
        out: the output directory. model_dir: ``OUT/models/NAME`` (replaced).
        fit_threads: torch/faiss threads of the fit.
    Returns:
        the stage's stats with ``fit_s``/``fit_cpu_s`` filled in.
    """

    stats = StageStats(stage=stage.name, group=stage.group())
    shutil.rmtree(model_dir, ignore_errors=True)
    work = out / "models" / f".{stage.name}.fitting"
    marker = work / "fit-input.json"
    if work.exists() and (not marker.exists()
                          or json.loads(marker.read_text()).get("fit_fingerprint") != fit_fp):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic.write_text(marker, json.dumps({"fit_fingerprint": fit_fp}) + "\n")
    t0, c0 = time.perf_counter(), time.process_time()
    print(f"speechtok: fitting {stage.name} on {', '.join(stage.inputs())}", flush=True)
    set_worker_threads(fit_threads)
    stage.fit(FitContext(out_dir=out, upstream_groups=stage.inputs(), model_dir=work,
                         num_threads=fit_threads))
    atomic.write_text(work / "fit.json", json.dumps(
        {"fit_fingerprint": fit_fp, "model_checksum": stage.model_checksum()},
        sort_keys=True) + "\n")
    atomic.fsync_tree(work)  # the model's files are durable before the directory is renamed
    os.rename(work, model_dir)
    atomic.fsync_dir(model_dir.parent)
    stats.fit_s = time.perf_counter() - t0
    stats.fit_cpu_s = time.process_time() - c0
    stats.fitted = True
    maybe_fault("after_fit")
    return stats


def frameless_input(out: Path, groups: Sequence[str]) -> tuple[str, int] | None:
    """``(group, rows)`` for the first of `groups` (committed in `out`) whose every row has 0
    frames (all its cuts quarantined or empty upstream), else None. Reads list offsets only."""
    for g in groups:
        lengths = ShardDataset(out, groups=(g,), include_quarantined=True).lengths(g)  # int64 (rows,)
        if not int(lengths.sum()):
            return g, int(lengths.size)
    return None


def frameless_error(stage: str, group: str, rows: int, quarantine: Sequence[dict[str, Any]],
                    quarantine_path: Path) -> InputError:
    """The error of a fit whose input `group` has no frame: says that all `rows` cuts of it were
    quarantined or empty, counts the stages' quarantine records by stage and reason, and names
    `quarantine_path` (written before)."""
    counts = Counter((str(q.get("stage")), str(q.get("reason"))) for q in quarantine if q.get("stage") != "ingest")
    why = ", ".join(f"{st} {r} x{n}" for (st, r), n in sorted(counts.items())) or "none quarantined"
    return InputError(
        group, f"has no frames to fit stage {stage!r} on: all {rows} cuts of it were quarantined or empty "
        f"upstream ({why}); see {quarantine_path} for each cut's reason, and fix the corpus")

