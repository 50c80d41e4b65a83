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
from pathlib import Path

from speechtok import atomic
from speechtok.faults import maybe_fault
from speechtok.pipeline.job import set_worker_threads
from speechtok.pipeline.report import StageStats
from speechtok.pipeline.stage import FitContext, StageBase


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
