"""Runs a recipe: ingest, shard plan, then each stage over all (selected) shards, stage-major.

Order of work in one `run`:

1. take the run lock (``OUT/run.lock``; array tasks take ``OUT/locks/shard-I-of-N.lock``);
2. ingest (or reuse) ``OUT/ingest/``; stream the manifest into data shards, committing the
   ``cuts`` group of each selected shard and writing ``OUT/plan.json``;
3. for each stage in recipe order: fit it first if it needs a fit (k-means on frames sampled
   from the committed upstream shards; written to ``OUT/models/NAME/``), compute its
   fingerprint, compare with what ``OUT`` holds (skip committed shards of the same
   fingerprint, refuse a different one unless ``--overwrite-stage``), then run its uncommitted
   shards through the executor and commit each result as it arrives;
4. merge quarantine records into ``OUT/quarantine.jsonl``; write ``OUT/report.json``.

Workers compute rows and write each shard file under a temporary name in ``OUT/shards``
(fsynced); they return only metadata (entry, quarantine records, usage). Only this process
commits (fingerprint check, index entry, rename), so feature bytes never pass through it. A
killed run loses at most the shards in flight (their temporary files are removed by the next
run): rerunning the same command resumes and produces byte-identical files (shards are a pure
function of their cuts and the stage fingerprint).

Index cost: the runner keeps one `IndexWriter` (loaded once per run; a group deleted for
``--overwrite-stage`` is dropped from it by `IndexWriter.remove_group`): each commit writes its entry file in
``OUT/index.d`` (O(1)) and fingerprints are checked in memory; the merged ``OUT/index.json`` is
regenerated after each stage and at the end of the run (readers merge ``index.d`` over a stale
one, e.g. after a kill), so it is byte-identical to an uninterrupted run's once a run ends.

Slurm arrays / several machines. A stage that needs a fit needs every upstream shard, so it is
fitted once, by a run without ``--shard-index``::

    speechtok run R -o OUT --until cuts                        # once (ingest + plan, quick)
    speechtok run R -o OUT --until fbank --shard-index $I --num-shards N   # array
    speechtok run R -o OUT --fit-only                          # once: k-means fit
    speechtok run R -o OUT --shard-index $I --num-shards N     # array: the rest

An array task that reaches an unfitted stage stops with this recipe in its message.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechtok import atomic
from speechtok.config import fingerprint_of, to_json
from speechtok.errors import BugError, ConfigError, InputError, SpeechtokError
from speechtok.failures import BUG, DISK_FULL_ERRNOS, RetryPolicy
from speechtok.faults import maybe_fault
from speechtok.pipeline.executors import ShardExecutor, make_executor
from speechtok.pipeline.fit import fit_into, frameless_error, frameless_input
from speechtok.pipeline.input import (
    ingest_step,
    iter_shards,
    read_quarantine_lines,
    selected,
)
from speechtok.pipeline.lock import RunLock
from speechtok.pipeline.plan import bytes_per_second
from speechtok.pipeline.recipe import Recipe
from speechtok.pipeline.report import Progress, RunReport, StageStats
from speechtok.pipeline.run_files import clean_own_tmp, clean_tmp, cpu_s
from speechtok.pipeline.stage import StageBase
from speechtok.pipeline.stage_types import build_stage
from speechtok.pipeline.stages.cuts import CutsConfig, CutsStage, cut_row
from speechtok.shards.index import IndexWriter, ShardEntry, ShardIndex, rewrite_index
from speechtok.shards.schema import GroupMeta
from speechtok.shards.writer import commit_group_shard, publish_shard_tmp


class DiskFullError(SpeechtokError):
    """Writing failed for lack of space (or a file-size limit); the run can be resumed."""


class ShardsFailedError(SpeechtokError):
    """Shards of a stage failed (environment errors after retries, or a bug); nothing of them
    was committed. `failures` holds the records (`speechtok.failures.failure_record`)."""

    def __init__(self, stage: str, failures: list[dict[str, Any]], *, stopped: bool) -> None:
        self.failures = failures
        lines = []
        for f in sorted(failures, key=lambda f: int(f["shard"])):
            what = f" at {f['item']}" if f.get("item") else ""
            lines.append(f"  shard {f['shard']} ({f['class']}){what}: {f['error']}")
        bugs = [f for f in failures if f["class"] == BUG]
        tb = ("\n" + bugs[0]["traceback"].rstrip()) if bugs else ""
        hint = ("a bug in stage code (traceback below); fix it, then rerun the same command"
                if bugs else "fix the cause (restore the files, remount the volume, free "
                "memory), then rerun the same command: it redoes only these shards")
        rest = " (the stage stopped at the first bug)" if stopped else ""
        super().__init__(
            f"stage {stage!r}: {len(failures)} shard(s) failed and nothing of them was "
            f"committed{rest}; {hint}.\n" + "\n".join(lines) + tb)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How to run a recipe (the ``speechtok run`` flags).

    Attributes:
        executor: ``local`` (a process pool), ``ray``, or ``inline`` (in this process; for
            debugging, bit-exact with the others only if ``MKL_CBWR`` was set at start).
        workers: parallel shard jobs. threads: torch/faiss threads per job.
        fit_threads: threads of corpus-level fits (k-means); part of what makes centroids
            reproducible bit for bit, so keep it fixed between runs that must agree.
        shard_index, num_shards: run only data shards ``j`` with ``j % num_shards == shard_index``.
        until: stop after this stage (``ingest``, ``cuts`` or a stage name).
        fit_only: run the fits whose upstream is complete, process no shard.
        overwrite_stages: stage names whose committed output (with another fingerprint) may be
            replaced; every later stage whose fingerprint changes with it is replaced too.
        ray_address: Ray cluster address (default: a private local instance on 127.0.0.1).
        progress: show progress on stderr.
        retries: tries in all for an environment error (I/O error, vanished file, out of
            memory) before the shard fails (see `speechtok.failures`).
        retry_backoff_s: sleep before the first retry, doubled before each later one.
        retry_quarantined: None, or reprocess the committed shards holding cuts quarantined
            for one of these reasons (an empty tuple: any reason), e.g. after fixing a mount;
            the shards of later stages built on them are redone too.
    """

    executor: str = "local"
    workers: int = 1
    threads: int = 1
    fit_threads: int = 1
    shard_index: int = 0
    num_shards: int = 1
    until: str | None = None
    fit_only: bool = False
    overwrite_stages: tuple[str, ...] = ()
    ray_address: str | None = None
    progress: bool = True
    retries: int = 3
    retry_backoff_s: float = 1.0
    retry_quarantined: tuple[str, ...] | None = None

    def validate(self, recipe: Recipe) -> None:
        RetryPolicy(attempts=self.retries, backoff_s=self.retry_backoff_s).validate()
        if self.executor not in ("local", "inline", "ray"):
            raise ConfigError("executor", self.executor, "must be local, inline or ray")
        if self.fit_only and self.num_shards > 1:
            raise ConfigError("fit_only", self.fit_only, "must be run without --num-shards")
        for name in ("workers", "threads", "fit_threads", "num_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not 0 <= self.shard_index < self.num_shards:
            raise ConfigError("shard_index", self.shard_index,
                              f"must be in [0, num_shards={self.num_shards})")
        names = ["ingest", "cuts", *recipe.stage_names()]
        if self.until is not None and self.until not in names:
            raise ConfigError("until", self.until, f"must be one of {names}")
        for n in self.overwrite_stages:
            if n not in names:
                raise ConfigError("overwrite_stage", n, f"must be one of {names}")


def _refusal(out: Path, stage: str, group: str, have: str, want: str) -> SpeechtokError:
    return SpeechtokError(
        f"{out} holds stage {stage!r} (group {group!r}) made with another config, code version, "
        f"model or upstream (committed: {have}; this run: {want}). Nothing was changed. "
        f"To keep both, write to a new output directory with -o NEW_DIR; to replace it (and "
        f"every later stage that depends on it), rerun with --overwrite-stage {stage}.")


class _Run:
    """State of one run (see module docstring)."""

    def __init__(self, recipe: Recipe, out: Path, opts: RunOptions, report: RunReport) -> None:
        self.recipe, self.out, self.opts, self.report = recipe, out, opts, report
        self.overwrite = set(opts.overwrite_stages)
        self.cascade = "ingest" in self.overwrite
        self.executor: ShardExecutor | None = None
        self.num_data_shards = 0
        self.ingest_quarantine = out / "ingest" / "quarantine.jsonl"
        self.shard_audio_s: list[float] = []
        self._index: Any = None  # IndexWriter, loaded on first commit

    def index_writer(self) -> Any:
        """The run's `IndexWriter` (loaded once; see module docstring)."""
        if self._index is None:
            self._index = IndexWriter(self.out)
        return self._index

    def flush_index(self, *, force: bool = False) -> None:
        """Regenerates ``OUT/index.json`` if this run committed since the last flush (or
        `force`, when an index exists: a killed run may have left it stale)."""
        if self._index is not None:
            self._index.flush(force=force)
        elif force and (self.out / "index.d").is_dir():
            rewrite_index(self.out)

    # ------------------------------------------------------------------ fingerprints

    def check_group(self, stage: str, group: str, fp: str) -> None:
        """Refuses, or deletes for overwrite, a committed group with another fingerprint."""

        have = ShardIndex.load(self.out).fingerprint_of(group)
        if have is None or have == fp:
            return
        if not (self.cascade or stage in self.overwrite):
            raise _refusal(self.out, stage, group, have, fp)
        self.index_writer().remove_group(group)  # files, entries and the in-memory index
        for p in (self.out / "quarantine.d").glob(f"{group}.*.jsonl"):
            p.unlink(missing_ok=True)
        self.cascade = True

    # ------------------------------------------------------------------ commits

    def commit(self, stage: StageBase, meta: Any, shard: int, rows: list[dict[str, Any]] | None,
               quarantine: list[dict[str, Any]], written: dict[str, Any] | None = None) -> None:
        """Commits one shard: its quarantine records, then the shard file, from `rows` (the
        cuts pass) or from the temporary file a worker `written` (``{"tmp", "entry"}``)."""

        if written is None:
            maybe_fault("before_commit")
        qfile = self.out / "quarantine.d" / f"{stage.group()}.{shard:05d}.jsonl"
        if quarantine:
            atomic.write_text(qfile, "".join(json.dumps(q, sort_keys=True) + "\n" for q in quarantine))
        else:
            qfile.unlink(missing_ok=True)
        if written is not None:
            entry = ShardEntry.from_dict(written["entry"], source=f"worker result of shard {shard}")
            if entry.shard != shard or entry.group != stage.group() or \
                    entry.fingerprint != meta.fingerprint:
                raise BugError(f"a worker wrote {entry.group!r} shard "
                                     f"{entry.shard} ({entry.fingerprint}) for shard {shard} of "
                                     f"{stage.group()!r} ({meta.fingerprint})")
            publish_shard_tmp(self.out, str(written["tmp"]), entry, index=self.index_writer())
        else:
            commit_group_shard(self.out, shard, meta, rows or [], index=self.index_writer())
        maybe_fault("after_commit")

    def group_meta(self, stage: StageBase, fp: str, upstream: str | None) -> Any:

        return GroupMeta(group=stage.group(), kind=stage.kind, stage=stage.type_name,
                         stage_version=stage.version, config=to_json(stage.config),
                         fingerprint=fp, upstream_fingerprint=upstream,
                         **stage.group_meta_fields())

    # ------------------------------------------------------------------ steps

    def cuts_pass(self, cuts_path: Path, upstream: str) -> str:
        """Streams the manifest into shards; commits the selected ``cuts`` shards."""

        stage = CutsStage(name="cuts", config=CutsConfig())
        fp = stage.fingerprint(upstream)
        self.check_group("cuts", "cuts", fp)
        stats = StageStats(stage="cuts", group="cuts", fingerprint=fp)
        index = ShardIndex.load(self.out)
        meta = self.group_meta(stage, fp, upstream)
        t0 = time.perf_counter()
        plan_shards: list[list[float]] = []
        run_only = self.opts.until != "ingest"
        for shard, cuts in iter_shards(cuts_path, self.recipe.cuts_per_shard):
            audio = float(sum(float(c["duration"]) for c in cuts))
            plan_shards.append([len(cuts), round(audio, 3)])
            if not selected(shard, self.opts.shard_index, self.opts.num_shards):
                continue
            stats.shards_total += 1
            if index.committed("cuts", shard) is not None or not run_only:
                stats.shards_skipped += 1
                continue
            self.commit(stage, meta, shard, [cut_row(c) for c in cuts], [])
            stats.add({"cuts": len(cuts), "quarantine": [], "audio_s": audio})
        self.flush_index()
        stats.wall_s = time.perf_counter() - t0
        self.num_data_shards = len(plan_shards)
        self.shard_audio_s = [s for _, s in plan_shards]
        plan = {"cuts_per_shard": self.recipe.cuts_per_shard, "num_shards": len(plan_shards),
                "num_cuts": int(sum(n for n, _ in plan_shards)),
                "audio_s": round(sum(s for _, s in plan_shards), 3), "cuts_fingerprint": fp,
                "shards": plan_shards}
        atomic.write_json(self.out / "plan.json", plan)
        self.report.plan = {k: v for k, v in plan.items() if k != "shards"}
        self.report.stages.append(stats)
        return fp

    def ensure_fit(self, stage: StageBase, upstream: str, *, refit: bool = False) -> Path:
        """Loads the stage's fitted model, fitting it first when needed (or `refit`: its input
        shards were redone by ``--retry-quarantined``); returns its dir."""

        fit_fp = stage.fit_fingerprint(upstream)
        model_dir = self.out / "models" / stage.name
        info_path = model_dir / "fit.json"
        if not refit and info_path.exists() and \
                json.loads(info_path.read_text()).get("fit_fingerprint") == fit_fp:
            stage.load_model(model_dir)
            return model_dir
        if self.opts.num_shards > 1:
            raise SpeechtokError(
                f"stage {stage.name!r} needs a corpus-level fit, which an array task "
                f"(--shard-index/--num-shards) cannot do alone. Once every array task has "
                f"finished the stages before it, run once without --shard-index: "
                f"`speechtok run RECIPE -o {self.out} --fit-only`, then rerun the array.")
        index = ShardIndex.load(self.out)
        for g in ("cuts", *stage.inputs()):
            done = len(index.committed_shards(g))
            if done != self.num_data_shards:
                raise SpeechtokError(
                    f"stage {stage.name!r} is fitted on all of {g!r}, but only {done} of "
                    f"{self.num_data_shards} shards are committed; run the earlier stages on "
                    f"every shard first (e.g. without --shard-index).")
        have = index.fingerprint_of(stage.group())
        if have is not None and not (self.cascade or stage.name in self.overwrite or refit):
            raise _refusal(self.out, stage.name, stage.group(), have,
                           f"a new fit with inputs {fit_fp}")
        empty = frameless_input(self.out, stage.inputs())
        if empty is not None:  # k-means would stop at "frame source: has no frames", saying not why
            self.merge_quarantine()
            raise frameless_error(stage.name, *empty, self.report.quarantine or [], self.out / "quarantine.jsonl")
        stats = fit_into(stage, fit_fp, self.out, model_dir, fit_threads=self.opts.fit_threads)
        self._fit_stats[stage.name] = stats
        return model_dir

    _fit_stats: dict[str, StageStats]

    def redo_shards(self, stage: StageBase, mine: list[int]) -> set[int]:
        """Committed shards of `stage` to process again: those whose upstream shards were
        redone in this run, and with ``retry_quarantined`` those holding a cut quarantined
        for one of its reasons."""
        redo = {j for j in mine if j in self._redone}
        reasons = self.opts.retry_quarantined
        if reasons is None:
            return redo

        for j in mine:
            qfile = self.out / "quarantine.d" / f"{stage.group()}.{j:05d}.jsonl"
            if qfile.exists() and any(not reasons or q.get("reason") in reasons
                                      for q in read_quarantine_lines(qfile)):
                redo.add(j)
        return redo

    def run_stage(self, stage: StageBase, fp: str, upstream: str, model_dir: Path | None) -> None:

        stats = self._fit_stats.pop(stage.name, None) or StageStats(stage=stage.name,
                                                                     group=stage.group())
        stats.fingerprint = fp
        self.report.stages.append(stats)
        index = ShardIndex.load(self.out)
        mine = [j for j in range(self.num_data_shards)
                if selected(j, self.opts.shard_index, self.opts.num_shards)]
        redo = self.redo_shards(stage, mine)
        todo = [j for j in mine if index.committed(stage.group(), j) is None or j in redo]
        stats.shards_total, stats.shards_skipped = len(mine), len(mine) - len(todo)
        if not todo:
            return
        executor = self.ensure_executor()
        meta = self.group_meta(stage, fp, upstream)

        bps = bytes_per_second(meta) or 0.0  # for the in-flight bound (by bytes)
        spec = stage.spec()
        jobs = ({"spec": spec, "model_dir": None if model_dir is None else str(model_dir),
                 "out_dir": str(self.out), "shard": j, "runner_pid": os.getpid(),
                 "meta": meta.to_json(), "est_bytes": int(bps * self.shard_audio_s[j]),
                 "retries": self.opts.retries, "retry_backoff_s": self.opts.retry_backoff_s}
                for j in todo)
        progress = Progress(stage.name, len(todo), enabled=self.opts.progress)
        failures: list[dict[str, Any]] = []
        stopped = False
        t0 = time.perf_counter()
        try:
            results = executor.imap_unordered(jobs, resources=stage.resources())
            for res in results:
                shard = int(res["shard"])
                if res.get("failed"):
                    failures.append(res["failed"])
                    if res["failed"]["class"] == BUG:  # every shard would fail the same way
                        stopped = True
                        close = getattr(results, "close", None)
                        if close is not None:
                            close()
                        break
                    continue
                if shard in redo:  # uncommit first: a kill now leaves it to redo, not stale
                    self.index_writer().forget(stage.group(), shard)
                self.report.driver_bytes += len(json.dumps(res))  # all a worker sends back
                self.commit(stage, meta, shard, None, res["quarantine"], written=res)
                if shard in redo:
                    self._redone.add(shard)
                    self._redone_groups.add(stage.group())
                stats.add(res)
                self.report.add_worker_usage(res)
                progress.update(float(res["audio_s"]))
            self.flush_index()
        finally:
            progress.close()
            stats.wall_s = time.perf_counter() - t0
        full = [f for f in failures if f.get("errno") in DISK_FULL_ERRNOS]
        if full:
            raise DiskFullError(
                f"no space left writing to {self.out} ({full[0]['error']}; {len(full)} shard(s) "
                f"of stage {stage.name!r}). Committed shards are intact; free space (or raise "
                f"the file size limit) and rerun the same command to resume.")
        if failures:
            raise ShardsFailedError(stage.name, failures, stopped=stopped)

    def ensure_executor(self) -> ShardExecutor:
        """The run's executor, created on first use."""
        if self.executor is None:
            self.executor = make_executor(self.opts.executor, workers=self.opts.workers,
                                          threads=self.opts.threads,
                                          ray_address=self.opts.ray_address)
        return self.executor

    def check_device(self, stage: StageBase) -> None:
        """Refuses a ``device: cuda`` stage where no CUDA device is visible (here, or in the
        Ray cluster), before its model is loaded."""
        device = str(getattr(stage.config, "device", "cpu"))
        if not device.startswith("cuda"):
            return
        if self.opts.executor == "ray":
            have = self.ensure_executor().gpus()
            where = "in the Ray cluster (no GPU resource)"
        else:
            have = float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0
            where = "on this machine (torch.cuda.is_available() is False)"
        if have <= 0:
            raise ConfigError(
                f"{stage.name}.device", device,
                f"must be 'cpu': no CUDA device is visible {where}. Rerun with --set "
                f"{stage.name}.device=cpu, or on a machine (or cluster) with a GPU")

    def execute(self) -> None:
        self._fit_stats = {}
        self._redone: set[int] = set()
        self._redone_groups: set[str] = set()
        t0, c0 = time.perf_counter(), time.process_time()
        ing = ingest_step(self.recipe.ingest, self.out, overwrite="ingest" in self.overwrite)
        self.ingest_quarantine = ing.quarantine_path
        if not ing.skipped and "ingest" in self.overwrite:
            self.cascade = True
        self.report.ingest = {"fingerprint": ing.fingerprint, "reused": ing.skipped,
                              "wall_s": round(time.perf_counter() - t0, 3),
                              "cpu_s": round(time.process_time() - c0, 3),
                              **{k: ing.report.get(k) for k in
                                 ("source", "kind", "num_cuts", "num_quarantined", "hours")}}
        maybe_fault("after_ingest")
        cuts_up = fingerprint_of({"ingest": ing.fingerprint,
                                  "cuts_per_shard": self.recipe.cuts_per_shard})
        fps: dict[str, str] = {"cuts": self.cuts_pass(ing.cuts_path, cuts_up)}
        if self.opts.until in ("ingest", "cuts"):
            return
        if self.num_data_shards == 0 and self.recipe.stages:
            reasons = ing.report.get("reasons") or {}
            raise InputError(
                str(ing.report.get("source", self.recipe.ingest.source)),
                f"gave 0 usable cuts ({sum(reasons.values())} quarantined: "
                f"{', '.join(f'{r} x{n}' for r, n in sorted(reasons.items())) or 'none'}), so the "
                f"stages have nothing to run on; see {ing.quarantine_path} and fix the corpus or "
                "the --set corpus=PATH")
        for spec in self.recipe.stages:
            stage = build_stage(spec)
            self.check_device(stage)
            missing = [g for g in stage.inputs() if g not in fps]
            if missing:
                raise ConfigError(f"{stage.name}.input", missing[0],
                                  f"must be a group written by an earlier stage ({sorted(fps)})")
            ups = [fps[g] for g in stage.inputs()] or [fps["cuts"]]
            upstream = ups[0] if len(ups) == 1 else fingerprint_of({"inputs": ups})
            # A fit on inputs that --retry-quarantined changed is redone, and with it the stage.
            refit = stage.needs_fit() and bool(self._redone_groups & set(stage.inputs()))
            if refit:
                self.overwrite.add(stage.name)
            model_dir = self.ensure_fit(stage, upstream, refit=refit) \
                if stage.needs_fit() else None
            fp = stage.fingerprint(upstream)
            self.check_group(stage.name, stage.group(), fp)
            fps[stage.group()] = fp
            if self.opts.fit_only:
                if stage.name in self._fit_stats:
                    self.report.stages.append(self._fit_stats.pop(stage.name))
                continue
            self.run_stage(stage, fp, upstream, model_dir)
            if self.opts.until == stage.name:
                break

    def merge_quarantine(self) -> None:
        """Writes ``OUT/quarantine.jsonl``: ingest's records, then each stage's by shard."""
        items = [{**q, "stage": q.get("stage", "ingest")}
                 for q in read_quarantine_lines(self.ingest_quarantine)]
        order = {"cuts": 0, **{f"{s['name']}": i + 1 for i, s in enumerate(self.recipe.stages)}}
        files = sorted((self.out / "quarantine.d").glob("*.jsonl"))
        per_file = [(read_quarantine_lines(p), p.name) for p in files]
        per_file.sort(key=lambda x: (order.get(str(x[0][0].get("stage")) if x[0] else "", 99), x[1]))
        for lines, _ in per_file:
            items.extend(lines)
        atomic.write_text(self.out / "quarantine.jsonl", "".join(json.dumps(q, sort_keys=True) + "\n" for q in items))
        self.report.quarantine = items


def _lock_for(out: Path, opts: RunOptions) -> contextlib.ExitStack:
    """Takes the run's locks (see `speechtok.pipeline.lock`): a whole run holds
    ``OUT/run.lock`` exclusively; an array task holds it shared (array tasks run side by side,
    a whole run excludes them) and its own ``OUT/locks/shard-I-of-N.lock`` exclusively."""
    stack = contextlib.ExitStack()
    with stack:
        if opts.num_shards == 1:
            stack.enter_context(RunLock(out / "run.lock"))
        else:
            stack.enter_context(RunLock(out / "run.lock", shared=True, what="array task"))
            stack.enter_context(RunLock(
                out / "locks" / f"shard-{opts.shard_index:05d}-of-{opts.num_shards:05d}.lock"))
        return stack.pop_all()


def run(recipe: Recipe, out_dir: str | Path, opts: RunOptions | None = None, *,
        executor: ShardExecutor | None = None) -> RunReport:
    """Runs `recipe` into `out_dir` (see module docstring); returns the report.

    Args:
        recipe: the parsed recipe. out_dir: the output directory (created).
        opts: how to run (defaults: local pool of 1 worker, all shards).
        executor: run shard jobs on this executor (e.g. a `LocalPoolExecutor` kept open across
            runs) instead of creating one from `opts`; the caller closes it.

    Raises:
        LockedError: another live run holds the output directory.
        DiskFullError: a write failed for lack of space; rerun to resume.
        SpeechtokError: a refused fingerprint change, a bad config, or a failing stage.
    """
    opts = opts or RunOptions()
    opts.validate(recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = RunReport(out_dir=str(out), recipe=str(recipe.path) if recipe.path else None,
                       executor=opts.executor, workers=opts.workers,
                       shard_index=opts.shard_index, num_shards=opts.num_shards)
    t0, c0 = time.perf_counter(), cpu_s()
    with _lock_for(out, opts):
        if opts.num_shards == 1:
            clean_tmp(out)
        state = _Run(recipe, out, opts, report)
        state.executor = executor
        failed = True
        try:
            state.execute()
            state.flush_index(force=True)
            state.merge_quarantine()
            failed = False
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                clean_own_tmp(out)
                raise DiskFullError(
                    f"no space left writing to {out} ({exc.strerror}: {exc.filename or ''}). "
                    f"Committed shards are intact; free space (or raise the file size limit) "
                    f"and rerun the same command to resume.") from exc
            raise
        finally:
            if state.executor is not None and executor is None:
                state.executor.close()  # waits for the jobs still running
            if failed and opts.num_shards == 1:
                clean_tmp(out)  # their temporary shard files (we hold the exclusive lock)
        maybe_fault("before_report")
        report.wall_s = time.perf_counter() - t0
        report.cpu_s = cpu_s() - c0  # this process (+ reaped children, not pool workers)
        report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        name = "report.json" if opts.num_shards == 1 else \
            f"report.shard-{opts.shard_index:05d}-of-{opts.num_shards:05d}.json"
        report.write(out / name)
    return report
