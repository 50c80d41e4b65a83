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
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from speechtok.errors import SpeechtokError
from speechtok.pipeline.executors.base import (
    MAX_INFLIGHT_BYTES,
    InflightBudget,
    Job,
    local_gpus,
    reproducible_env,
    run_bounded,
)
from speechtok.pipeline.job import run_shard_job, set_worker_threads
from speechtok.pipeline.proc_guard import PARENT_ENV, die_with_parent, exit_if_gone
from speechtok.pipeline.stage import StageResources

#: Modules the fork server imports once, so each worker does not pay for them again.
PRELOAD = ["speechtok.pipeline.proc_guard", "torch", "lhotse", "pyarrow", "numpy", "speechtok.pipeline.job",
           "speechtok.pipeline.stages.fbank", "speechtok.pipeline.stages.kmeans_units",
           "speechtok.features.fbank", "speechtok.tokenizers.kmeans",
           "speechtok.shards.file", "lhotse.serialization"]


class InlineExecutor:
    """Runs jobs one by one in this process (``--workers 1``)."""

    def __init__(self, *, threads: int = 1) -> None:
        self.workers = 1
        self.threads = threads

    def imap_unordered(self, jobs: Iterable[Job], *,
                       resources: StageResources | None = None) -> Iterator[Job]:
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

    def imap_unordered(self, jobs: Iterable[Job], *,
                       resources: StageResources | None = None) -> Iterator[Job]:
        """Results of `jobs` as they finish (`resources` only matter to Ray)."""
        pending: dict[Future[Job], tuple[Job, int]] = {}

        def submit(job: Job) -> Future[Job]:
            return self._pool.submit(run_shard_job,
                                     {**job, "threads": self.threads, "in_pool": True})

        def wait_any(futures: Collection[Future[Job]]) -> set[Future[Job]]:
            return wait(futures, return_when=FIRST_COMPLETED)[0]

        try:
            yield from run_bounded(jobs, InflightBudget(2 * self.workers, self.max_inflight_bytes),
                                   submit=submit, wait=wait_any,
                                   finish=lambda fut, job, tries: fut.result(), pending=pending)
        except BrokenProcessPool as exc:
            raise SpeechtokError(
                "a worker process died (killed by the OS, out of memory?); committed shards are "
                "intact: rerun the same command to resume") from exc
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

