"""The machine's floors: sgemm GFLOP/s at 1 thread (and 2), memory bandwidth, fsync'd writes.

Other benchmarks measure the floors they divide by in their own run (`bench.floors`); this one
records the `machine.*` figures the README quotes. Output disk: `$TMPDIR` (default /tmp) and
the repository's disk (where `runs/` and shards are written).

Run: `.venv/bin/python -m bench.bench_machine`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import Fig, record, set_threads, timed
from bench.floors import fsync_write_mb_s, mem_bandwidth_gb_s, sgemm_gflops

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    set_threads(1)
    load = os.getloadavg()[0]
    with timed() as t1:
        g1 = sgemm_gflops(1)
    with timed() as t2:
        g2 = sgemm_gflops(2)
    with timed() as tm:
        bw = mem_bandwidth_gb_s()
    out = ROOT / "runs" / ".floor"
    with timed() as tf:
        disk = fsync_write_mb_s(out)
    with timed() as tt:
        tmp = fsync_write_mb_s(Path(tempfile.gettempdir()))
    print(f"  load {load:.1f}: sgemm 1t {g1}, 2t {g2}, mem {bw:.1f} GB/s, fsync {disk:.0f} / {tmp:.0f} MB/s")
    record({
        "machine.sgemm_gflops_1t": Fig(g1["gflops"], timing=t1, threads=1),
        "machine.sgemm_gflops_2t": Fig(g2["gflops"], timing=t2, threads=2),
        "machine.mem_bandwidth_gb_s": Fig(bw, timing=tm, threads=1),
        "machine.fsync_write_mb_s": Fig(disk, timing=tf, threads=1),
        "machine.fsync_write_tmp_mb_s": Fig(tmp, timing=tt, threads=1),
    }, notes={
        "machine.sgemm_gflops_1t": (f"GFLOP per CPU s (so load does not lower it), float32 (4096x768)@(768x1024), "
                                    f"best of 5, max of numpy {g1['numpy_gflops']:.1f} / "
                                    f"torch {g1.get('torch_gflops', 0):.1f}"),
        "machine.sgemm_gflops_2t": "per core (CPU s of both threads) at 2 threads",
        "machine.mem_bandwidth_gb_s": "GB per CPU s, np.copyto of 256 MiB float32, read + write bytes, best of 5",
        "machine.fsync_write_mb_s": ("128 MiB in 1 MiB os.write blocks + fsync to a new file under runs/ "
                                     "(the output disk), best of 3"),
        "machine.fsync_write_tmp_mb_s": f"same under {tempfile.gettempdir()}",
    }, settings={"sgemm_shape": [4096, 768, 1024], "mem_mb": 256, "fsync_mb": 128, "repeats": 5})


if __name__ == "__main__":
    main()
