"""One unit of work: run one stage over one shard's cuts. Runs in a worker or in-process.

A job is a JSON-able dict (no objects cross the process boundary but plain data)::

    {"spec": stage spec, "model_dir": str | None, "out_dir": str, "shard": int,
     "meta": GroupMeta JSON, "threads": int, "in_pool": bool, "runner_pid": int,
     "retries": int, "retry_backoff_s": float}

The worker reads the shard's cuts (the ``cut`` column of ``OUT/shards/NNNNN.cuts.arrow``) and
the rows of the stage's input groups from the committed shard files (memory-mapped), calls
`Stage.process`, writes the shard file itself under a temporary name in ``OUT/shards``
(`speechtok.shards.writer.write_shard_tmp`, fsynced) and returns only metadata::

    {"shard": int, "tmp": str (relative to OUT), "entry": ShardEntry dict (sha256, rows, bytes),
     "quarantine": [{"id", "stage", "shard", "reason", "detail"}, ...],
     "model_loads": int (loads of this stage's model in this worker process so far),
     "cuts": int, "audio_s": float, "cpu_s": float (whole job), "process_cpu_s": float
     (inside `Stage.process` only), "wall_s": float,
     "pid": int, "proc_cpu_s": float, "proc_rss_mb": float}  # the worker process so far

Quarantined cuts get `Stage.empty_row` so that every group stays aligned with ``cuts``.

A job whose stage fails returns ``{"shard", "failed": record, ...usage}`` instead of rows
(`speechtok.failures.failure_record`: class ``environment`` or ``bug``, the cut when known, the
error and its traceback). Environment errors are retried first (``job["retries"]`` tries,
``job["retry_backoff_s"]`` doubling), per cut where the stage reads audio and per shard for
the rest. The runner commits nothing of a failed shard.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import faiss
import torch

from speechtok.errors import InputError, SpeechtokError
from speechtok.failures import RetryPolicy, failure_record, set_policy, with_retries
from speechtok.faults import maybe_fault
from speechtok.pipeline.stage import CutItem, Quarantine, StageBase, count_model_load, model_loads
from speechtok.pipeline.stage_types import build_stage
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardEntry, entry_path, safe_shard_file, shard_path
from speechtok.shards.schema import GroupMeta, payload_columns
from speechtok.shards.writer import write_shard_tmp

_STAGES: dict[str, StageBase] = {}
_THREADS: list[int] = []


def set_worker_threads(n: int) -> None:
    """Pins torch and faiss (and BLAS via env) to `n` threads in this process."""
    if _THREADS and _THREADS[0] == n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    _THREADS[:] = [n]


def stage_for(spec: dict[str, Any], model_dir: str | None) -> StageBase:
    """The stage of `spec` with its model loaded, cached per process."""
    key = json.dumps([spec, model_dir], sort_keys=True)
    stage = _STAGES.get(key)
    if stage is None:
        stage = build_stage(spec)
        if model_dir is not None:
            stage.load_model(Path(model_dir))
            count_model_load(stage.name)
        _STAGES.clear()  # one stage at a time: stage-major execution
        _STAGES[key] = stage
    return stage


def _open(out: Path, shard: int, group: str) -> Any:
    """The committed shard file `shard` of `group`, from its own index entry (O(1): loading the
    whole index per job would make a run quadratic in the number of shards)."""

    entry: ShardEntry | None = None
    epath = entry_path(out, group, shard)
    if epath.exists():
        entry = ShardEntry.from_dict(json.loads(epath.read_text()), source=str(epath))
        path = shard_path(out, shard, group)
        if entry.status != "committed" or not path.exists() or path.stat().st_size != entry.bytes:
            entry = None
    if entry is None:
        raise InputError(str(shard_path(out, shard, group)),
                         f"shard {shard} of {group!r} is not committed; run its stage first")
    return ShardFile(safe_shard_file(out, entry), entry, group=group, checksum=False)


def _rows_of(sf: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of shard file `sf` as dicts of numpy views (list columns) for `columns`."""
    rows: list[dict[str, Any]] = []
    ids = sf.all_ids().to_pylist()
    for b in range(len(sf.batch_starts) - 1):
        lists = {c: sf.list_column(b, c) for c in columns}
        for j in range(int(sf.batch_starts[b + 1] - sf.batch_starts[b])):
            row: dict[str, Any] = {"id": ids[int(sf.batch_starts[b]) + j]}
            for c, col in lists.items():
                row[c] = col.row(j)
            rows.append(row)
    return rows


def load_items(out: Path, shard: int, inputs: tuple[str, ...]) -> list[CutItem]:
    """The `CutItem`s of `shard`: cuts (as JSON, deserialised on use) from the cuts shard,
    plus the rows of the groups `inputs`, aligned by id."""

    cuts_file = _open(out, shard, "cuts")
    try:
        ids: list[str] = []
        durations: list[float] = []
        jsons: list[str | None] = []
        for b in range(len(cuts_file.batch_starts) - 1):
            batch = cuts_file.batch(b)
            ids += batch.column("id").to_pylist()
            durations += batch.column("duration").to_pylist()
            jsons += batch.column("cut").to_pylist()
    finally:
        cuts_file.close()
    if any(j is None for j in jsons):
        raise InputError(str(cuts_file.item), "the cuts shard has no `cut` JSON column (written "
                         "with keep_cut_json=false); stages cannot load audio from it")
    upstream: dict[str, list[dict[str, Any]]] = {}
    for group in inputs:
        sf = _open(out, shard, group)
        rows = _rows_of(sf, tuple(c for c in payload_columns(sf.meta) if c != "durations"))
        if [r["id"] for r in rows] != ids:
            raise InputError(sf.item, f"rows are not aligned with the cuts of shard {shard}")
        upstream[group] = rows
    return [CutItem(cut_json=jsons[i], id=ids[i], duration=durations[i],
                    upstream={g: upstream[g][i] for g in inputs}) for i in range(len(ids))]


def run_shard_job(job: dict[str, Any]) -> dict[str, Any]:
    """Runs one job (see module docstring) and returns its result dict; never raises for a
    failing stage (the failure is returned, classified)."""
    w0, c0 = time.perf_counter(), time.process_time()
    set_worker_threads(int(job.get("threads", 1)))
    set_policy(RetryPolicy(attempts=int(job.get("retries", 3)),
                           backoff_s=float(job.get("retry_backoff_s", 1.0))))
    out, shard = Path(job["out_dir"]), int(job["shard"])
    name = str(job["spec"].get("name"))
    try:
        res = _compute(job, out, shard)
    except Exception as exc:  # classified: environment (after retries) or bug
        res = {"shard": shard, "failed": failure_record(exc, stage=name, shard=shard),
               "quarantine": [], "cuts": 0, "audio_s": 0.0, "process_cpu_s": 0.0}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    res.update({"model_loads": model_loads(name), "pid": os.getpid(), "proc_cpu_s": usage.ru_utime + usage.ru_stime,
                "proc_rss_mb": usage.ru_maxrss / 1024.0,
                "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0})
    return res


def _compute(job: dict[str, Any], out: Path, shard: int) -> dict[str, Any]:
    """The rows and quarantine records of one job; raises when the stage fails."""
    stage = stage_for(job["spec"], job.get("model_dir"))
    items = with_retries(lambda: load_items(out, shard, stage.inputs()), item=f"shard {shard}")
    maybe_fault("in_process", also_kill=job.get("runner_pid") if job.get("in_pool") else None)
    p0 = time.process_time()
    results = with_retries(lambda: stage.process(items), item=f"shard {shard}")
    process_cpu_s = time.process_time() - p0
    if len(results) != len(items):
        raise SpeechtokError(f"stage {stage.name!r} returned {len(results)} results for "
                             f"{len(items)} cuts in shard {shard}; it must return one per cut")
    rows: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    for item, res in zip(items, results, strict=True):
        if isinstance(res, Quarantine):
            quarantine.append(res.to_json(stage=stage.name, shard=shard))
            rows.append(stage.empty_row(item.id))
        else:
            if res.get("id") != item.id:
                raise SpeechtokError(f"stage {stage.name!r} returned row {res.get('id')!r} for "
                                     f"cut {item.id!r}; rows must follow the cut order")
            rows.append(res)
    audio_s = float(sum(i.duration for i in items))
    n = len(items)
    results, items = [], []  # the rows are all we keep while writing
    maybe_fault("before_commit", also_kill=job.get("runner_pid") if job.get("in_pool") else None)
    tmp, entry = write_shard_tmp(out, shard, GroupMeta.from_json(job["meta"], source="job"),
                                 rows)
    return {"shard": shard, "tmp": tmp, "entry": entry.to_dict(), "quarantine": quarantine,
            "cuts": n, "audio_s": audio_s, "process_cpu_s": process_cpu_s}
