"""What every benchmark uses: thread pinning, CPU+wall timing, and merging named figures.

Figures go to `bench/results/latest.json` (a flat object: figure name -> number, plus `machine`
and `date`) and the table in `bench/README.md` between the FIGURES markers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
README = BENCH_DIR / "README.md"
SHARED = Path(os.environ.get("SPEECHTOK_SHARED", BENCH_DIR.parent.parent / "shared"))
BEGIN, END = "<!-- FIGURES:BEGIN -->", "<!-- FIGURES:END -->"


def set_threads(n: int) -> None:
    """Pins torch, faiss and BLAS to `n` threads for the rest of the process."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


@dataclass
class Timing:
    """CPU seconds (this process + waited-for children) and wall seconds of a block."""

    cpu_s: float = 0.0
    wall_s: float = 0.0


def _cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    """`with timed() as t: ...` then read `t.cpu_s`, `t.wall_s`."""
    t = Timing()
    c0, w0 = _cpu_now(), time.perf_counter()
    try:
        yield t
    finally:
        t.cpu_s = _cpu_now() - c0
        t.wall_s = time.perf_counter() - w0


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu {platform.processor() or ''}".strip()


def record(figures: dict[str, float], notes: dict[str, str] | None = None) -> None:
    """Merges `figures` into `bench/results/latest.json` and the table in `bench/README.md`.

    Args:
        figures: figure name (e.g. ``"fbank.speedup_vs_lhotse"``) -> number.
        notes: optional figure name -> one-line note shown in the README table.
    """
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for k, v in figures.items():
        data[k] = round(float(v), 6)
    data["machine"] = machine()
    data["date"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    notes_path = RESULTS.parent / "notes.json"
    all_notes: dict[str, str] = json.loads(notes_path.read_text()) if notes_path.exists() else {}
    all_notes.update(notes or {})
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(RESULTS)
    notes_path.write_text(json.dumps(all_notes, indent=2, sort_keys=True) + "\n")
    _update_readme(data, all_notes)
    for k, v in figures.items():
        print(f"  {k:40s} {v:.4g}")


def _update_readme(data: dict[str, object], notes: dict[str, str]) -> None:
    rows = ["| figure | value | note |", "|---|---|---|"]
    for k in sorted(data):
        if k in ("machine", "date"):
            continue
        rows.append(f"| `{k}` | {data[k]} | {notes.get(k, '')} |")
    rows.append(f"\nMachine: {data.get('machine')}; date: {data.get('date')}.")
    table = "\n".join(rows)
    text = README.read_text() if README.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN not in text:
        text += "\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + "\n" + table + "\n" + END + tail)
