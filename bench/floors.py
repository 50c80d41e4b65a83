"""This machine's limits, measured in the same run as the figures that divide by them.

- `sgemm_gflops(threads)`: float32 matmul rate (the better of numpy's BLAS and torch) on a
  k-means-shaped product, at the thread count the benchmark uses.
- `mem_bandwidth_gb_s()`: bytes read + written per second copying a buffer far larger than cache.
- `fsync_write_mb_s(folder)`: sequential 1 MiB writes to a new file in `folder`, then fsync:
  what a durable writer to that disk can reach.

Each returns the best of `repeats` (the machine is shared; the best run is the least disturbed).
Compute floors divide by process CPU seconds (all threads), as the efficiency figures do, so a
loaded machine that time-slices the process does not lower the floor; the disk floor is wall
time (fsync waits are not CPU).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn: object, repeats: int) -> float:
    """Least process CPU seconds (all threads) of `repeats` calls of `fn`."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()  # type: ignore[operator]
        best = min(best, time.process_time() - t0)
    return best


def sgemm_gflops(threads: int = 1, m: int = 4096, k: int = 768, n: int = 1024,
                 repeats: int = 5) -> dict[str, float]:
    """GFLOP per CPU second of `(m, k) @ (k, n)` float32 at `threads` threads (per core).

    Returns:
        ``{"gflops": best of numpy and torch, "numpy_gflops", "torch_gflops"}``.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    flops = 2.0 * m * k * n
    with threadpool_limits(threads):
        np.matmul(a, b, out=out)  # warm up
        t_np = _best(lambda: np.matmul(a, b, out=out), repeats)
    res = {"numpy_gflops": flops / t_np / 1e9}
    try:
        import torch

        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        ta, tb, to = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        torch.matmul(ta, tb, out=to)
        t_t = _best(lambda: torch.matmul(ta, tb, out=to), repeats)
        torch.set_num_threads(prev)
        res["torch_gflops"] = flops / t_t / 1e9
    except ImportError:
        pass
    res["gflops"] = max(res.values())
    return res


def mem_bandwidth_gb_s(mb: int = 256, repeats: int = 5) -> float:
    """GB per CPU second (1e9 bytes) read + written by `np.copyto` of an `mb` MiB float32 buffer, 1 thread."""
    src = np.ones(mb * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = _best(lambda: np.copyto(dst, src), repeats)
    return 2.0 * src.nbytes / t / 1e9


def fsync_write_mb_s(folder: Path, mb: int = 128, repeats: int = 3, block_mb: int = 1) -> float:
    """MB/s (1e6 bytes) writing `mb` MiB to a new file in `folder` in `block_mb` blocks + fsync."""
    folder.mkdir(parents=True, exist_ok=True)
    block = np.random.default_rng(0).integers(0, 255, block_mb * 2**20, np.uint8).tobytes()
    n = mb // block_mb
    best = float("inf")
    for _ in range(repeats):
        fd, name = tempfile.mkstemp(dir=folder, prefix=".floor-", suffix=".bin")
        try:
            t0 = time.perf_counter()
            for _ in range(n):
                os.write(fd, block)
            os.fsync(fd)
            best = min(best, time.perf_counter() - t0)
        finally:
            os.close(fd)
            os.unlink(name)
    return n * len(block) / best / 1e6
