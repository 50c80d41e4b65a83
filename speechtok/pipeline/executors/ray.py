"""Ray executor: shard jobs on long-lived Ray actors, one loaded model per actor.

Each stage gets `workers` actors (`ShardWorker`), created with the stage's resources
(`StageResources`: ``num_cpus``, ``num_gpus`` for ``device: cuda`` stages, ``memory``), so Ray
places GPU stages on GPU nodes while CPU stages run beside them. An actor keeps its stage (and
its model) loaded between shards: a model is loaded once per actor, not per shard. Each actor
has at most 2 jobs queued, so at most ``2 * workers`` shards are in flight. Actors write their
shard files themselves (see `speechtok.pipeline.job`) and return only metadata, so the
driver carries no feature bytes.

Node or worker loss: actors are created with ``max_restarts=-1, max_task_retries=-1``, so a job
whose actor died with its node is retried on the restarted actor (elsewhere); a job that still
fails with a Ray system error is resubmitted (up to `RESUBMITS` times). Jobs are idempotent:
a lost attempt leaves at most a temporary file, never a committed shard.

By default it starts a private local Ray instance bound to 127.0.0.1 (no dashboard, `workers`
CPUs). To use a cluster pass ``--ray-address`` (``auto`` from a node of the cluster, or
``ray://HEAD:10001``): speechtok must be installed on every node and ``OUT`` must be on a file
system every node sees. ``RAY_ADDRESS`` in the environment is not followed silently: it is
used only with ``--ray-address env`` (a notice says so otherwise).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from speechtok.errors import SpeechtokError
from speechtok.pipeline.executors.base import (
    MAX_INFLIGHT_BYTES,
    RESUBMIT,
    InflightBudget,
    Job,
    Resubmit,
    reproducible_env,
    run_bounded,
)
from speechtok.pipeline.executors.ray_loopback import LOOPBACK, loopback_ray
from speechtok.pipeline.job import run_shard_job
from speechtok.pipeline.stage import StageResources

#: How often a job whose worker died (a Ray system error) is resubmitted before the run fails.
RESUBMITS = 3


class ShardWorker:
    """A Ray actor that runs shard jobs in one long-lived process (stage and model cached)."""

    def __init__(self, env: dict[str, str]) -> None:
        os.environ.update(env)

    def run(self, job: Job) -> Job:
        return run_shard_job(job)

    def node(self) -> str:
        # lazy: ray is optional (--executor ray)
        import ray

        return str(ray.get_runtime_context().get_node_id())


class RayExecutor:
    """Runs shard jobs on Ray actors (see module docstring); results in completion order."""

    def __init__(self, *, workers: int, threads: int = 1, address: str | None = None,
                 max_inflight_bytes: int = MAX_INFLIGHT_BYTES) -> None:
        try:
            # lazy: ray is optional: only the ray executor needs it
            import ray
        except ImportError as exc:  # pragma: no cover - ray is in the lock file
            raise SpeechtokError("`--executor ray` needs ray: pip install 'ray[data]'") from exc
        self._ray = ray
        self.workers = max(1, workers)
        self.threads = threads
        self.max_inflight_bytes = max_inflight_bytes
        if address == "env":
            address = os.environ.get("RAY_ADDRESS") or None
            if address is None:
                raise SpeechtokError("`--ray-address env` needs RAY_ADDRESS to be set")
        elif address is None and os.environ.get("RAY_ADDRESS"):
            print(f"speechtok: not using RAY_ADDRESS={os.environ['RAY_ADDRESS']!r}; starting a "
                  "private Ray on 127.0.0.1 (pass --ray-address env, or the address, to use "
                  "that cluster)", file=sys.stderr)
        self._env = {**{v: str(threads) for v in
                        ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
                     **reproducible_env()}
        self._started = not ray.is_initialized()
        if self._started:
            if address:
                ray.init(address=address, runtime_env={"env_vars": self._env},
                         log_to_driver=False)
            else:
                saved = os.environ.pop("RAY_ADDRESS", None)  # never joined implicitly
                try:
                    # address="local": always a new private instance, never a Ray that
                    # happens to run on this machine (ray.init(None) would join it);
                    # loopback_ray: else Ray swaps 127.0.0.1 for the primary interface
                    with loopback_ray():
                        ray.init(address="local", num_cpus=self.workers,
                                 include_dashboard=False, _node_ip_address=LOOPBACK,
                                 runtime_env={"env_vars": self._env}, log_to_driver=False,
                                 configure_logging=False)
                finally:
                    if saved is not None:
                        os.environ["RAY_ADDRESS"] = saved
        self._actor_cls = ray.remote(ShardWorker)

    def gpus(self) -> float:
        """GPUs in the Ray cluster."""
        return float(self._ray.cluster_resources().get("GPU", 0.0))

    def _actors(self, resources: StageResources) -> list[Any]:
        opts: Job = {"num_cpus": resources.cpus, "num_gpus": resources.gpus,
                                "max_restarts": -1, "max_task_retries": -1}
        if resources.memory_mb:
            opts["memory"] = int(resources.memory_mb) << 20
        return [self._actor_cls.options(**opts).remote(self._env) for _ in range(self.workers)]

    def imap_unordered(self, jobs: Iterable[Job], *,
                       resources: StageResources | None = None) -> Iterator[Job]:
        ray = self._ray
        actors = self._actors(resources or StageResources())
        load = {i: 0 for i in range(len(actors))}
        actor_of: dict[Any, int] = {}  # ref -> actor
        pending: dict[Any, tuple[Job, int]] = {}  # ref -> (job, tries)

        def submit(job: Job) -> Any:
            a = min(load, key=lambda i: (load[i], i))
            load[a] += 1
            ref = actors[a].run.remote({**job, "threads": self.threads, "in_pool": False})
            actor_of[ref] = a
            return ref

        def wait_any(refs: Collection[Any]) -> list[Any]:
            return list(ray.wait(list(refs), num_returns=1)[0])

        def finish(ref: Any, job: Job, tries: int) -> Job | Resubmit[Any]:
            load[actor_of.pop(ref)] -= 1
            try:
                return dict(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                raise SpeechtokError(f"a Ray task failed: {exc}") from exc
            except ray.exceptions.RayError as exc:  # the actor/node died
                if tries >= RESUBMITS:
                    raise SpeechtokError(
                        f"shard {job.get('shard')}: its Ray worker died "
                        f"{tries + 1} times ({type(exc).__name__}); committed shards "
                        "are intact: rerun the same command to resume") from exc
                return RESUBMIT

        try:
            yield from run_bounded(jobs, InflightBudget(2 * len(actors), self.max_inflight_bytes),
                                   submit=submit, wait=wait_any, finish=finish, pending=pending)
        finally:
            for actor in actors:  # frees their resources (and kills jobs still running)
                ray.kill(actor)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
