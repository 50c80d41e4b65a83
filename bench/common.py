"""What every benchmark uses: thread pinning, CPU+wall timing, and recording named figures.

`record(figures, notes)` merges figures into `bench/results/latest.json`, each with its
provenance (value, unit, date, commit, machine, threads, wall and CPU seconds, settings, load
average, the code it measured, the peers it was compared with); see `bench/provenance.py` for
the file format and `python -m bench --check` for what makes a figure stale. The tables in
`bench/README.md` (and the README sections' BENCH blocks) are generated from the results by
`bench/report.py`.

A figure value is a number, or a `Fig` when it carries its own timing, unit, threads, settings
or peers::

    with timed() as t_ours: ...
    with timed() as t_peer: ...
    record({"x.peer_wall_s": Fig(t_peer.wall_s, timing=t_peer),
            "x.speedup_vs_peer": Fig(t_peer.wall_s / t_ours.wall_s, timing=t_ours,
                                     peers=["x.peer_wall_s"])},
           notes={...}, settings={"frames": 200_000}, code=["speechtok/x.py"])
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import provenance as prov
from speechtok.paths import shared_dir

BENCH_DIR = prov.BENCH_DIR
RESULTS = prov.RESULTS
README = BENCH_DIR / "README.md"
SHARED = shared_dir()
RUN_ENV, NAME_ENV = "SPEECHTOK_BENCH_RUN", "SPEECHTOK_BENCH_NAME"
_threads: int | None = None


def set_threads(n: int) -> None:
    """Pins torch, faiss and BLAS to `n` threads for the rest of the process."""
    global _threads
    _threads = n
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


_START_CPU, _START_WALL = _cpu_now(), time.perf_counter()
prov.commit()  # cached now: the commit the benchmark process started from, not the later tree
prov.snapshot_code()  # and the code it runs, for the figures' code_sha


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


def best_of(timings: Sequence[Timing]) -> Timing:
    """The run with the least wall time (its CPU time with it) of repeated measurements."""
    if not timings:
        raise ValueError("best_of needs at least one Timing, but got none; time the block first")
    return min(timings, key=lambda t: t.wall_s)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    """Host, architecture, CPU count and model."""
    return prov.machine()


@dataclass
class Fig:
    """A figure with its own provenance; any field left None takes the `record` call's."""

    value: float
    unit: str | None = None
    timing: Timing | None = None
    threads: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    peers: Sequence[str] = ()


def guess_unit(name: str) -> str:
    """A unit from a figure's name (`_s` seconds, `speedup`/`ratio` x, ...); '' when unclear."""
    n = name.rsplit(".", 1)[-1]
    suffixes = [("_mb_s", "MB/s"), ("_gb_s", "GB/s"), ("per_s", "1/s")]
    for suf, unit in suffixes:
        if n.endswith(suf) or suf + "_" in n:
            return unit
    if "gflops" in n:
        return "GFLOP/s"
    if n.endswith("_s") or "_s_" in n:
        return "s"
    rules = [(("speedup", "ratio", "over_floor", "_over_", "efficiency"), "x"),
             (("x_realtime",), "x realtime"), (("bitrate",), "bit/s"), (("sisdr",), "dB"),
             (("rtf",), "CPU s / audio s"), (("wer", "cer"), "fraction")]
    for keys, unit in rules:
        if any(k in n for k in keys):
            return unit
    return "MiB" if n.endswith("_mb") else ""


def bench_name() -> str:
    """The running benchmark's name (`kmeans` for `bench/bench_kmeans.py`)."""
    if os.environ.get(NAME_ENV):
        return os.environ[NAME_ENV]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    mod = spec.name if spec is not None else Path(getattr(main, "__file__", "") or "").stem
    stem = mod.rsplit(".", 1)[-1]
    return stem[len("bench_"):] if stem.startswith("bench_") else stem


_run_id: str | None = None


def run_id() -> str:
    """This run's id: the runner's (`python -m bench`), else one per process."""
    global _run_id
    if os.environ.get(RUN_ENV):
        return os.environ[RUN_ENV]
    if _run_id is None:
        _run_id = f"{prov.now_iso()}-{os.getpid()}"
    return _run_id


def begin_run(name: str, rid: str) -> None:
    """Marks `rid` the newest run of benchmark `name` (its older figures become stale)."""
    with prov.locked():
        data = prov.load()
        data["runs"][name] = {"run_id": rid, "started": prov.now_iso(), "finished": None,
                              "commit": prov.commit(), "status": "running",
                              "loadavg": prov.loadavg()}
        prov.save(data)


def end_run(name: str, rid: str, ok: bool) -> None:
    """Marks run `rid` of `name` finished (`ok` or `failed`)."""
    with prov.locked():
        data = prov.load()
        run = data["runs"].get(name)
        if run is not None and run.get("run_id") == rid:
            run["finished"] = prov.now_iso()
            run["status"] = "ok" if ok else "failed"
            prov.save(data)


def record(figures: Mapping[str, float | Fig], notes: Mapping[str, str] | None = None, *,
           settings: Mapping[str, Any] | None = None, timing: Timing | None = None,
           threads: int | None = None, code: Sequence[str] = (),
           peers: Mapping[str, Sequence[str]] | None = None,
           units: Mapping[str, str] | None = None, retire: Sequence[str] = ()) -> None:
    """Merges `figures` with their provenance into `bench/results/latest.json` and regenerates
    the table in `bench/README.md`.

    Args:
        figures: figure name (e.g. ``"fbank.speedup_vs_lhotse_store"``) -> number or `Fig`.
        notes: figure name -> one-line note shown in the table.
        settings: what was measured (sizes, data, repeats), kept with every figure.
        timing: wall/CPU seconds behind the figures; default: this process so far.
        threads: thread count used; default: the last `set_threads`.
        code: repository-relative files the figures depend on besides the benchmark's own file;
            a change to any of them makes the figures stale.
        peers: figure name -> names of the peer figures (measured in the same run) it compares
            against; `--check` fails when one of them is missing or from another run.
        units: figure name -> unit, where the name does not say it (see `guess_unit`).
        retire: figures this benchmark no longer produces (or could not measure in this
            environment): removed from the results instead of left stale.
    """
    name = bench_name()
    rid = run_id()
    code_files = sorted({f"bench/bench_{name}.py", *code})
    sha = prov.code_sha(code_files, at_start=True)
    default_threads = threads if threads is not None else _threads
    if default_threads is None:
        default_threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    run_timing = Timing(cpu_s=_cpu_now() - _START_CPU, wall_s=time.perf_counter() - _START_WALL)
    base = {"date": prov.now_iso(), "commit": prov.commit(), "machine": prov.machine(),
            "loadavg": prov.loadavg(), "bench": name, "run_id": rid, "code": code_files,
            "code_sha": sha}
    entries: dict[str, dict[str, Any]] = {}
    for k, v in figures.items():
        fig = v if isinstance(v, Fig) else Fig(float(v))
        t = fig.timing or timing
        entries[k] = {
            **base,
            "value": round(float(fig.value), 6),
            "unit": fig.unit or (units or {}).get(k) or guess_unit(k),
            "threads": fig.threads if fig.threads is not None else default_threads,
            "wall_s": round((t or run_timing).wall_s, 3),
            "cpu_s": round((t or run_timing).cpu_s, 3),
            "timing": "figure" if t is not None else "run",
            "settings": {**(settings or {}), **fig.settings},
            "peers": sorted({*fig.peers, *(peers or {}).get(k, ())}),
            "note": (notes or {}).get(k, ""),
        }
    with prov.locked():
        data = prov.load()
        runs = data["runs"]
        if name not in runs or runs[name].get("run_id") != rid:
            runs[name] = {"run_id": rid, "started": base["date"], "finished": None,
                          "commit": base["commit"], "status": "running", "loadavg": base["loadavg"]}
        data["figures"].update(entries)
        for k in retire:
            if k not in entries:
                data["figures"].pop(k, None)
        prov.save(data)
        notes_path = prov.RESULTS.parent / "notes.json"
        if notes_path.exists():  # folded into the figures by prov.load
            notes_path.unlink()
        from bench.report import write_bench_readme

        write_bench_readme(data)
    for k, e in entries.items():
        print(f"  {k:44s} {e['value']:.4g} {e['unit']}")
