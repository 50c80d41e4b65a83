"""Progress with ETA while a stage runs, and the run's final report (``OUT/report.json``).

Progress goes to stderr: a tqdm bar on a terminal, otherwise one line about every 10% of the
shards (logs of batch jobs stay short). The report holds, per stage: shards run and skipped,
cuts, quarantined cuts, wall and CPU seconds, audio seconds and audio-seconds per second; and
the quarantined items with their reasons.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from speechtok import atomic

#: At most this many quarantined items are listed in report.json (all are in quarantine.jsonl).
MAX_LISTED = 1000


@dataclass(kw_only=True)
class StageStats:
    """Counters of one stage in one run."""

    stage: str
    group: str
    fingerprint: str = ""
    shards_total: int = 0
    shards_run: int = 0
    shards_skipped: int = 0
    cuts: int = 0
    quarantined: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    fit_s: float = 0.0
    fit_cpu_s: float = 0.0
    fitted: bool = False
    #: worker pid -> loads of this stage's model in that process (see `model_loads_per_worker`).
    model_loads: dict[str, int] = field(default_factory=dict)

    @property
    def model_loads_per_worker(self) -> int:
        """The most times one worker process loaded this stage's model (1 = loaded once)."""
        return max(self.model_loads.values(), default=0)

    def add(self, result: dict[str, Any]) -> None:
        if "pid" in result and "model_loads" in result:
            pid = str(result["pid"])
            self.model_loads[pid] = max(self.model_loads.get(pid, 0), int(result["model_loads"]))
        self.shards_run += 1
        self.cuts += int(result["cuts"])
        self.quarantined += len(result["quarantine"])
        self.audio_s += float(result["audio_s"])
        self.cpu_s += float(result.get("cpu_s", 0.0))
        self.process_cpu_s += float(result.get("process_cpu_s", 0.0))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_loads_per_worker"] = self.model_loads_per_worker
        d["audio_s_per_s"] = round(self.audio_s / self.wall_s, 3) if self.wall_s > 0 else None
        for k in ("audio_s", "wall_s", "cpu_s", "process_cpu_s", "fit_s", "fit_cpu_s"):
            d[k] = round(d[k], 3)
        return d


class Progress:
    """Per-stage progress over `total` shards, with audio-seconds/s and an ETA."""

    def __init__(self, desc: str, total: int, *, enabled: bool = True) -> None:
        self.desc, self.total = desc, total
        self.done, self.audio_s = 0, 0.0
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._next_line = 0
        self.enabled = enabled and total > 0
        if self.enabled and sys.stderr.isatty():
            self._bar = tqdm(total=total, desc=desc, unit="shard", file=sys.stderr,
                             dynamic_ncols=True, mininterval=0.5)

    def update(self, audio_s: float) -> None:
        self.done += 1
        self.audio_s += audio_s
        elapsed = time.perf_counter() - self.t0
        speed = self.audio_s / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.set_postfix_str(f"{speed:.0f} audio-s/s", refresh=False)
            self._bar.update(1)
        elif self.enabled and (self.done >= self._next_line or self.done == self.total):
            eta = elapsed / self.done * (self.total - self.done)
            print(f"speechtok: {self.desc}: {self.done}/{self.total} shards, "
                  f"{speed:.0f} audio-s/s, elapsed {elapsed:.0f}s, ETA {eta:.0f}s",
                  file=sys.stderr, flush=True)
            self._next_line = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass(kw_only=True)
class RunReport:
    """What `run` returns and writes to ``OUT/report.json``."""

    out_dir: str
    recipe: str | None
    executor: str
    workers: int
    shard_index: int
    num_shards: int
    ingest: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    stages: list[StageStats] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    workers_cpu_s: float = 0.0
    workers_peak_rss_mb: float = 0.0
    _workers: dict[int, tuple[float, float]] = field(default_factory=dict)

    #: bytes of the results workers sent back (as JSON): metadata only, no features.
    driver_bytes: int = 0

    def add_worker_usage(self, result: dict[str, Any]) -> None:
        """Keeps the latest (cumulative CPU, peak RSS) a pool/Ray worker process reported."""
        pid = result.get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            self._workers[pid] = (float(result.get("proc_cpu_s", 0.0)),
                                  float(result.get("proc_rss_mb", 0.0)))
            self.workers_cpu_s = sum(c for c, _ in self._workers.values())
            self.workers_peak_rss_mb = max(r for _, r in self._workers.values())

    def to_json(self) -> dict[str, Any]:
        reasons = Counter(f"{q.get('stage', 'ingest')}:{q.get('reason')}" for q in self.quarantine)
        return {
            "out_dir": self.out_dir, "recipe": self.recipe, "executor": self.executor,
            "workers": self.workers, "shard_index": self.shard_index,
            "num_shards": self.num_shards, "ingest": self.ingest, "plan": self.plan,
            "stages": [s.to_json() for s in self.stages],
            "quarantine": {"count": len(self.quarantine), "by_reason": dict(sorted(reasons.items())),
                           "items": self.quarantine[:MAX_LISTED]},
            "wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "worker_processes": {"count": len(self._workers), "cpu_s": round(self.workers_cpu_s, 3),
                        "peak_rss_mb": round(self.workers_peak_rss_mb, 1)},
            "driver_bytes": self.driver_bytes,
        }

    def write(self, path: Path) -> None:
        atomic.write_text(path, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    def summary(self) -> str:
        """A short table for the terminal."""
        lines = [f"{'stage':<14}{'shards run/skip':>16}{'cuts':>8}{'quar.':>7}{'audio h':>9}"
                 f"{'wall s':>9}{'audio-s/s':>11}"]
        for s in self.stages:
            speed = f"{s.audio_s / s.wall_s:.0f}" if s.wall_s > 0 and s.shards_run else "-"
            lines.append(f"{s.stage:<14}{f'{s.shards_run}/{s.shards_skipped}':>16}{s.cuts:>8}"
                         f"{s.quarantined:>7}{s.audio_s / 3600:>9.3f}{s.wall_s:>9.1f}{speed:>11}")
        reasons = Counter(f"{q.get('stage', 'ingest')}:{q.get('reason')}" for q in self.quarantine)
        if reasons:
            lines.append("quarantined: " + ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items())))
        lines.append(f"total {self.wall_s:.1f} s wall, {self.cpu_s:.1f} s CPU (runner) + "
                     f"{self.workers_cpu_s:.1f} s CPU ({len(self._workers)} workers), peak RSS "
                     f"{self.peak_rss_mb:.0f} MiB (runner), {self.workers_peak_rss_mb:.0f} MiB "
                     f"(worker); output in {self.out_dir}")
        return "\n".join(lines)
