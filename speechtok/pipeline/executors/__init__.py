"""Shard executors: a local process pool, in-process, and Ray, behind one `ShardExecutor`."""

from __future__ import annotations

from speechtok.errors import SpeechtokError
from speechtok.pipeline.executors.base import ShardExecutor
from speechtok.pipeline.executors.local import InlineExecutor, LocalPoolExecutor
from speechtok.pipeline.executors.ray import RayExecutor


def make_executor(kind: str, *, workers: int, threads: int = 1,
                  ray_address: str | None = None) -> ShardExecutor:
    """``local`` (a process pool, also for 1 worker), ``inline`` (this process) or ``ray``."""
    if kind == "local":
        return LocalPoolExecutor(workers=workers, threads=threads)
    if kind == "inline":
        return InlineExecutor(threads=threads)
    if kind == "ray":
        return RayExecutor(workers=workers, threads=threads, address=ray_address)
    raise SpeechtokError(f"`--executor` must be local, inline or ray, but is {kind!r} instead.")
