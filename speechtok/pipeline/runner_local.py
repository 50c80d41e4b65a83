"""Local executors: a process pool with a bounded queue, and in-process (for debugging).

Bit-identical output with any number of workers: stage code runs in fresh worker processes
that set ``MKL_CBWR=AUTO,STRICT`` (unless the user set it) before their first MKL call (the
fork server only imports modules, it computes nothing).
Without it, MKL's matrix products and FFTs may round differently depending on the memory
alignment of their buffers, which differs from process to process (seen here: 1-ulp float16
differences in filterbanks). Hence even ``--workers 1`` uses a one-process pool; the
``inline`` executor runs jobs in the calling process and is bit-exact only when ``MKL_CBWR``
was set before torch was first imported.

Both expose `imap_unordered(jobs)`: results come back as jobs finish, with at most
``2 * workers`` jobs in flight, so the runner's memory does not grow with the corpus. The pool
uses the ``forkserver`` start method (workers are forked from a clean server process that has
imported speechtok, torch and faiss once, not from a parent whose thread pools are running),
and pins each worker to `threads` threads. The fork server and the workers die with the
runner, even when it is SIGKILLed (`speechtok.pipeline.proc_guard`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from speechtok.errors import SpeechtokError
from speechtok.pipeline.proc_guard import PARENT_ENV, die_with_parent, exit_if_gone
from speechtok.pipeline.shard_job import run_shard_job, set_worker_threads
from speechtok.pipeline.stage import StageResources

#: MKL conditional numerical reproducibility: same bits whatever the buffer alignment.
REPRODUCIBLE_ENV = {"MKL_CBWR": "AUTO,STRICT"}


def reproducible_env() -> dict[str, str]:
    """The env vars that make MKL results bit-reproducible (the user's values win).

    Workers set them before their first MKL call (MKL reads them then, not at import), so the
    calling process's environment is left alone.
    """
    return {k: os.environ.get(k, v) for k, v in REPRODUCIBLE_ENV.items()}


#: Modules the fork server imports once, so each worker does not pay for them again.
PRELOAD = ["speechtok.pipeline.proc_guard", "torch", "lhotse", "pyarrow", "numpy", "speechtok.pipeline.shard_job",
           "speechtok.pipeline.stages.fbank", "speechtok.pipeline.stages.kmeans_units",
           "speechtok.features.fbank", "speechtok.tokenizers.kmeans",
           "speechtok.pipeline.shard_file", "lhotse.serialization"]


#: Default bound on the estimated bytes of the shards in flight (all workers together).
MAX_INFLIGHT_BYTES = 4 << 30


class InflightBudget:
    """Admits shard jobs while at most `max_jobs` are in flight and their estimated bytes
    (``job["est_bytes"]``: the shard's audio seconds x its group's bytes per second) stay
    within `max_bytes`; one job is always admitted when none is in flight, so a shard larger
    than the budget still runs (alone)."""

    def __init__(self, max_jobs: int, max_bytes: int = MAX_INFLIGHT_BYTES) -> None:
        self.max_jobs, self.max_bytes = max_jobs, max_bytes
        self.jobs = 0
        self.bytes = 0

    def admits(self, job: dict[str, Any]) -> bool:
        if self.jobs == 0:
            return True
        return self.jobs < self.max_jobs and \
            self.bytes + int(job.get("est_bytes") or 0) <= self.max_bytes

    def add(self, job: dict[str, Any]) -> None:
        self.jobs += 1
        self.bytes += int(job.get("est_bytes") or 0)

    def remove(self, job: dict[str, Any]) -> None:
        self.jobs -= 1
        self.bytes -= int(job.get("est_bytes") or 0)


class ShardExecutor(Protocol):
    """Runs shard jobs; results in completion order."""

    workers: int

    def imap_unordered(self, jobs: Iterable[dict[str, Any]], *,
                       resources: StageResources | None = None) -> Iterator[dict[str, Any]]: ...

    def gpus(self) -> float: ...

    def close(self) -> None: ...


def local_gpus() -> float:
    """CUDA devices visible to this process (0 without torch CUDA)."""
    import torch

    return float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0


class InlineExecutor:
    """Runs jobs one by one in this process (``--workers 1``)."""

    def __init__(self, *, threads: int = 1) -> None:
        self.workers = 1
        self.threads = threads

    def imap_unordered(self, jobs: Iterable[dict[str, Any]], *,
                       resources: StageResources | None = None) -> Iterator[dict[str, Any]]:
        for job in jobs:
            yield run_shard_job({**job, "threads": self.threads, "in_pool": False})

    def gpus(self) -> float:
        return local_gpus()

    def close(self) -> None:
        """Nothing to release."""


def _init_worker(threads: int, env: dict[str, str], runner_pid: int) -> None:
    die_with_parent()  # the fork server; it dies with the runner (see proc_guard)
    exit_if_gone(runner_pid)
    os.environ.update(env)  # before any MKL call in this worker (see module docstring)
    set_worker_threads(threads)


class LocalPoolExecutor:
    """A `ProcessPoolExecutor` of `workers` processes with at most ``2 * workers`` jobs queued."""

    def __init__(self, *, workers: int, threads: int = 1, start_method: str = "forkserver",
                 max_inflight_bytes: int = MAX_INFLIGHT_BYTES) -> None:
        ctx: Any = mp.get_context(start_method)
        # The fork server (started on the first submit, inherits this environment) dies with
        # this process: see `speechtok.pipeline.proc_guard`.
        os.environ[PARENT_ENV] = str(os.getpid())
        if start_method == "forkserver":
            # Imported once in the fork server; workers are forked from it with them loaded.
            ctx.set_forkserver_preload(PRELOAD)
        self.workers = workers
        self.threads = threads
        self.max_inflight_bytes = max_inflight_bytes
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                         initializer=_init_worker,
                                         initargs=(threads, reproducible_env(), os.getpid()))

    def gpus(self) -> float:
        return local_gpus()

    def imap_unordered(self, jobs: Iterable[dict[str, Any]], *,
                       resources: StageResources | None = None) -> Iterator[dict[str, Any]]:
        """Results of `jobs` as they finish (`resources` only matter to Ray)."""
        pending: dict[Future[dict[str, Any]], dict[str, Any]] = {}
        budget = InflightBudget(2 * self.workers, self.max_inflight_bytes)
        it = iter(jobs)
        job: dict[str, Any] | None = None
        try:
            while True:
                while True:
                    job = job or next(it, None)
                    if job is None or not budget.admits(job):
                        break
                    budget.add(job)
                    pending[self._pool.submit(
                        run_shard_job, {**job, "threads": self.threads, "in_pool": True})] = job
                    job = None
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    budget.remove(pending.pop(fut))
                    yield fut.result()
        except BrokenProcessPool as exc:
            raise SpeechtokError(
                "a worker process died (killed by the OS, out of memory?); committed shards are "
                "intact: rerun the same command to resume") from exc
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(kind: str, *, workers: int, threads: int = 1,
                  ray_address: str | None = None) -> ShardExecutor:
    """``local`` (a process pool, also for 1 worker), ``inline`` (this process) or ``ray``."""
    if kind == "local":
        return LocalPoolExecutor(workers=workers, threads=threads)
    if kind == "inline":
        return InlineExecutor(threads=threads)
    if kind == "ray":
        from speechtok.pipeline.runner_ray import RayExecutor

        return RayExecutor(workers=workers, threads=threads, address=ray_address)
    raise SpeechtokError(f"`--executor` must be local, inline or ray, but is {kind!r} instead.")
