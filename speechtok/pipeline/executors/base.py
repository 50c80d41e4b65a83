"""What every shard executor shares: the `ShardExecutor` protocol and the bounded in-flight loop.

An executor runs shard jobs (dicts built by `speechtok.pipeline.job`) and yields their results
in completion order. `run_bounded` is the one scheduling loop: it admits jobs while an
`InflightBudget` allows (at most ``2 * workers`` jobs and `MAX_INFLIGHT_BYTES` estimated bytes in
flight, one job always), waits for any to finish, and resubmits a job whose worker was lost when
the executor says so. The local pool (`executors.local`) and Ray (`executors.ray`) differ only
in how they submit a job and wait for one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import torch

from speechtok.pipeline.stage import StageResources

#: MKL conditional numerical reproducibility: same bits whatever the buffer alignment.
REPRODUCIBLE_ENV = {"MKL_CBWR": "AUTO,STRICT"}

#: Default bound on the estimated bytes of the shards in flight (all workers together).
MAX_INFLIGHT_BYTES = 4 << 30

Job = dict[str, Any]
H = TypeVar("H")


def reproducible_env() -> dict[str, str]:
    """The env vars that make MKL results bit-reproducible (the user's values win).

    Workers set them before their first MKL call (MKL reads them then, not at import), so the
    calling process's environment is left alone.
    """
    return {k: os.environ.get(k, v) for k, v in REPRODUCIBLE_ENV.items()}


def local_gpus() -> float:
    """CUDA devices visible to this process (0 without torch CUDA)."""
    return float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0


class ShardExecutor(Protocol):
    """Runs shard jobs; results in completion order."""

    workers: int

    def imap_unordered(self, jobs: Iterable[Job], *,
                       resources: StageResources | None = None) -> Iterator[Job]: ...

    def gpus(self) -> float: ...

    def close(self) -> None: ...


class InflightBudget:
    """Admits shard jobs while at most `max_jobs` are in flight and their estimated bytes
    (``job["est_bytes"]``: the shard's audio seconds x its group's bytes per second) stay
    within `max_bytes`; one job is always admitted when none is in flight, so a shard larger
    than the budget still runs (alone)."""

    def __init__(self, max_jobs: int, max_bytes: int = MAX_INFLIGHT_BYTES) -> None:
        self.max_jobs, self.max_bytes = max_jobs, max_bytes
        self.jobs = 0
        self.bytes = 0

    def admits(self, job: Job) -> bool:
        if self.jobs == 0:
            return True
        return self.jobs < self.max_jobs and \
            self.bytes + int(job.get("est_bytes") or 0) <= self.max_bytes

    def add(self, job: Job) -> None:
        self.jobs += 1
        self.bytes += int(job.get("est_bytes") or 0)

    def remove(self, job: Job) -> None:
        self.jobs -= 1
        self.bytes -= int(job.get("est_bytes") or 0)


class Resubmit(Generic[H]):
    """Returned by a `finish` callback of `run_bounded`: run this job again (its worker died)."""


RESUBMIT: Resubmit[Any] = Resubmit()


def run_bounded(jobs: Iterable[Job], budget: InflightBudget, *,
                submit: Callable[[Job], H],
                wait: Callable[[Collection[H]], Iterable[H]],
                finish: Callable[[H, Job, int], Job | Resubmit[Any]],
                pending: dict[H, tuple[Job, int]]) -> Iterator[Job]:
    """Results of `jobs` as they finish, with at most what `budget` admits in flight.

    `submit(job)` starts a job and returns its handle; `wait(handles)` blocks until at least
    one is done and returns the done ones; `finish(handle, job, tries)` returns the job's
    result, or `RESUBMIT` to run it again (its ``tries`` then grows by one; resubmitted jobs go
    before new ones). `pending` (handle -> (job, tries)) is the caller's, so that it can cancel
    what is still in flight when the consumer stops early.
    """
    it = iter(jobs)
    retry: list[tuple[Job, int]] = []
    job: Job | None = None

    def start(job: Job, tries: int) -> None:
        budget.add(job)
        pending[submit(job)] = (job, tries)

    while True:
        while retry and budget.admits(retry[-1][0]):
            start(*retry.pop())
        while not retry:
            job = job or next(it, None)
            if job is None or not budget.admits(job):
                break
            start(job, 0)
            job = None
        if not pending:
            return
        for handle in wait(list(pending)):
            done_job, tries = pending.pop(handle)
            budget.remove(done_job)
            result = finish(handle, done_job, tries)
            if isinstance(result, Resubmit):
                retry.append((done_job, tries + 1))
            else:
                yield result
