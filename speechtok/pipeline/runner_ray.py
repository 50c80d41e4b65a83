"""Ray executor: the same shard jobs as Ray tasks, with at most ``2 * workers`` in flight.

By default it starts a private local Ray instance bound to 127.0.0.1, with no dashboard, and
`workers` CPUs. To use a cluster, pass ``--ray-address ray://HEAD:10001`` (or ``auto`` from a
node of the cluster), or set ``RAY_ADDRESS``; speechtok must be installed on every node and
``OUT`` must be on a file system every node sees (workers read upstream shards from it; the
driver alone writes shards and the index).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from speechtok.errors import SpeechtokError
from speechtok.pipeline.runner_local import reproducible_env
from speechtok.pipeline.shard_job import run_shard_job


class RayExecutor:
    """Runs shard jobs as Ray tasks (1 CPU each); results in completion order."""

    def __init__(self, *, workers: int, threads: int = 1, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - ray is in the lock file
            raise SpeechtokError("`--executor ray` needs ray: pip install 'ray[data]'") from exc
        self._ray = ray
        self.workers = max(1, workers)
        self.threads = threads
        address = address or os.environ.get("RAY_ADDRESS") or None
        env = {"env_vars": {**{v: str(threads) for v in
                               ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
                            **reproducible_env()}}
        self._started = not ray.is_initialized()
        if self._started:
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False,
                         _node_ip_address="127.0.0.1", runtime_env=env, log_to_driver=False,
                         configure_logging=False)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_shard_job)

    def imap_unordered(self, jobs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        ray = self._ray
        pending: list[Any] = []
        it = iter(jobs)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < 2 * self.workers:
                    job = next(it, None)
                    if job is None:
                        exhausted = True
                        break
                    pending.append(self._remote.remote(
                        {**job, "threads": self.threads, "in_pool": False}))
                if not pending:
                    return
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(exc.cause, BaseException) else None
                        if isinstance(cause, SpeechtokError):
                            raise cause from exc
                        raise SpeechtokError(f"a Ray task failed: {exc}") from exc
                    except ray.exceptions.RayError as exc:
                        raise SpeechtokError(
                            f"a Ray worker died ({type(exc).__name__}); committed shards are "
                            "intact: rerun the same command to resume") from exc
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
