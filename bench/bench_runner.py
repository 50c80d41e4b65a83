"""Runner benchmark: fbank + k-means units over speechocean762-train80 (1x and replicated).

Each configuration runs in its own process (peak RSS is per process) with the executor
created up front and handed to `run` (so pool/Ray start-up is timed separately), then:

- CPU of everything: the runner process + every live descendant (forkserver, pool workers, or
  Ray's daemons and workers), read with psutil before the executor is closed;
- the stages' own compute: CPU inside `Stage.process` (audio decoding + features + unit
  assignment) summed over jobs, plus the k-means fit's CPU.

Figures:
- ``runner.overhead_frac``: (all CPU - stages' own CPU) / stages' own CPU on the replicated
  corpus, local pool of 2 workers (steady state: cut (de)serialisation, moving rows between
  processes, Arrow writes, checksums, index updates, plus the fixed start-up below).
- ``runner.overhead_frac_1x``: the same on 1x with 1 worker, where the fixed start-up (the fork
  server importing torch/lhotse/faiss once, the runner's own lazy imports: ~3 s CPU) weighs
  against only ~4.5 s of stage compute (filterbanks run at ~1900x real time per core).
- ``runner.rss_ratio_10x``: peak RSS of the runner process, replicated corpus / 1x (2 workers).
- ``runner.speedup_2_workers``: run wall time of a model stage (Whisper tiny.en encoder
  states, CTranslate2, 1 thread per worker, on the first ``BENCH_RUNNER_MODEL_CUTS`` cuts),
  local pool 1 worker / 2 workers (peers ``runner.model_stage_wall_{1_worker,2_workers}_s``).
  The goal (>= 1.8) needs two idle cores; the note records the load average around the runs.
- ``runner.ray_vs_local``: throughput of Ray with 2 workers / local pool with 2 workers (1x;
  peers ``runner.{ray,local}_2_workers_audio_s_per_s``).
- ``runner.driver_bytes_per_feature_byte``: bytes the workers sent back to the runner (their
  results as JSON: entries, quarantine records, usage) per byte of the shard files they wrote
  (1x, 2 workers); workers write their own shards, so this is metadata only.
- ``runner.model_loads_per_worker``: the most times one worker process loaded a stage's model
  (the k-means centroids; 1x, 2 workers over 8 shards).
- ``runner.plan_10kh_s`` / ``runner.plan_10kh_rss_mb``: wall seconds and peak RSS of
  ``speechtok run R -o OUT --plan`` (a fresh process) on a synthetic 10,000-hour manifest of
  3.6 million 10 s cuts.

``BENCH_RUNNER_PARTS`` (comma-separated, default ``all``) picks parts: ``runs`` (the overhead,
RSS, speedup and Ray figures), ``driver`` (driver bytes and model loads, 1x), ``plan``.

The ingest (audio validation) is done once before, outside the timings: the recipe reads the
ingested manifest with ``ingest.kind: cuts``. ``BENCH_RUNNER_MULT`` (default 10) sets the
replication factor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import SHARED, record, set_threads

MULT = int(os.environ.get("BENCH_RUNNER_MULT", "10"))
#: The model-stage speedup runs on the first MODEL_CUTS cuts of the corpus.
MODEL_CUTS = int(os.environ.get("BENCH_RUNNER_MODEL_CUTS", "48"))
MODEL_CUTS_PER_SHARD = 8


def _recipe(manifest: Path, kind: str = "fbank") -> Any:
    from speechtok.pipeline.recipe import recipe_from_dict

    if kind == "whisper":  # the model stage: Whisper tiny.en encoder states (CTranslate2)
        from speechtok.paths import whisper_tiny_en_dir

        return recipe_from_dict({
            "ingest": {"source": str(manifest), "kind": "cuts"},
            "shards": {"cuts_per_shard": MODEL_CUTS_PER_SHARD},
            "stages": [{"type": "whisper", "name": "wsp", "config": {
                "model": str(whisper_tiny_en_dir()), "backend": "ctranslate2", "threads": 1}}],
        })
    return recipe_from_dict({
        "ingest": {"source": str(manifest), "kind": "cuts"},
        "shards": {"cuts_per_shard": 200},
        "stages": [
            {"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 80}},
            {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
             "config": {"k": 100, "iterations": 10, "frame_budget": 100_000, "seed": 0}},
        ],
    })


def one(manifest: str, out: str, executor: str, workers: int, kind: str = "fbank") -> None:
    """Runs one configuration in this process and prints its measurements as JSON."""
    import psutil

    from speechtok.pipeline.executors.local import LocalPoolExecutor
    from speechtok.pipeline.runner import RunOptions, run

    set_threads(1)
    t0 = time.perf_counter()
    ex: Any
    if executor == "ray":
        from speechtok.pipeline.executors.ray import RayExecutor

        ex = RayExecutor(workers=workers)
    else:
        ex = LocalPoolExecutor(workers=workers)
    startup_s = time.perf_counter() - t0
    me = psutil.Process()
    c_before = sum(me.cpu_times()[:2])
    rep = run(_recipe(Path(manifest), kind), out,
              RunOptions(executor=executor, workers=workers, progress=False), executor=ex)
    total_cpu = sum(me.cpu_times()[:2]) - c_before
    for child in me.children(recursive=True):
        try:
            total_cpu += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    ex.close()
    stages = {s.stage: s for s in rep.stages}
    own = sum(s.process_cpu_s + s.fit_cpu_s for s in rep.stages)
    print(json.dumps({
        "wall_s": rep.wall_s, "startup_s": startup_s, "total_cpu_s": total_cpu,
        "runner_cpu_s": rep.cpu_s,
        "stage_cpu_s": own, "audio_s": rep.plan["audio_s"], "cuts": rep.plan["num_cuts"],
        "rss_mb": rep.peak_rss_mb, "worker_rss_mb": rep.workers_peak_rss_mb,
        "fit_s": stages["km"].fit_s if "km" in stages else 0.0,
        "driver_bytes": rep.driver_bytes,
        "shard_bytes": sum(p.stat().st_size for p in (Path(out) / "shards").glob("*.arrow")
                           if not p.name.endswith(".cuts.arrow")),
        "model_loads_per_worker": max(s.model_loads_per_worker for s in rep.stages),
    }))


def _spawn(manifest: Path, out: Path, executor: str, workers: int,
           kind: str = "fbank") -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_runner", "--one", str(manifest), str(out), executor,
         str(workers), kind], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{executor} x{workers} failed:\n{proc.stderr[-3000:]}")
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {manifest.parent.name:6s} {executor:5s} x{workers}: wall {res['wall_s']:.1f} s "
          f"(+{res['startup_s']:.1f} s start), CPU {res['total_cpu_s']:.1f} s of which stages "
          f"{res['stage_cpu_s']:.1f} s, {res['audio_s'] / res['wall_s']:.0f} audio-s/s, "
          f"RSS {res['rss_mb']:.0f} MiB (worker {res['worker_rss_mb']:.0f})", flush=True)
    return res


def _record_driver(b: dict[str, Any]) -> None:
    """`runner.driver_bytes_per_feature_byte` and `runner.model_loads_per_worker` of run `b`."""
    record({"runner.driver_bytes_per_feature_byte": b["driver_bytes"] / b["shard_bytes"],
            "runner.model_loads_per_worker": b["model_loads_per_worker"]}, {
        "runner.driver_bytes_per_feature_byte": (
            f"{b['driver_bytes']:,} B of worker results (JSON) / {b['shard_bytes']:,} B of "
            "fbank + units shard files the workers wrote; 1x speechocean762-train80, 2 workers, "
            "200 cuts/shard; goal <= 0.01"),
        "runner.model_loads_per_worker": (
            "most loads of one stage's model in one worker process (k-means centroids, 2 "
            "workers, 8 shards); goal 1")})


def _head(src: Path, dst: Path, n: int) -> None:
    """The first `n` cuts of manifest `src` into `dst`."""
    from itertools import islice

    from lhotse import CutSet
    from lhotse.serialization import SequentialJsonlWriter

    dst.parent.mkdir(parents=True, exist_ok=True)
    with SequentialJsonlWriter(dst) as w:
        for cut in islice(CutSet.from_jsonl_lazy(src), n):
            w.write(cut)


def _replicate(src: Path, dst: Path, times: int) -> None:
    from lhotse import CutSet
    from lhotse.serialization import SequentialJsonlWriter

    dst.parent.mkdir(parents=True, exist_ok=True)
    with SequentialJsonlWriter(dst) as w:
        for r in range(times):
            for cut in CutSet.from_jsonl_lazy(src):
                w.write(cut.with_id(f"{cut.id}_r{r}"))


def plan_10kh(work: Path) -> None:
    """`runner.plan_10kh_s` and `runner.plan_10kh_rss_mb` (see module docstring)."""
    manifest = work / "cuts-10kh.jsonl.gz"
    from speechtok.manifests.synthetic_cuts import write_synthetic_cuts

    n = write_synthetic_cuts(manifest, 10_000, 10.0)
    recipe = work / "plan.yaml"
    recipe.write_text(
        f"ingest: {{source: {manifest}, kind: cuts}}\nshards: {{cuts_per_shard: 1000}}\n"
        "stages:\n  - {type: fbank, name: fbank, config: {num_mel_bins: 80}}\n"
        "  - {type: kmeans_units, name: km, input: feats.fbank, config: {k: 500}}\n")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "speechtok", "run", str(recipe), "-o",
                             str(work / "plan-out"), "--plan"], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"--plan failed (status {status})")
    print(out)
    rss = usage.ru_maxrss / 1024.0
    busy = f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)"
    record({"runner.plan_10kh_s": wall, "runner.plan_10kh_rss_mb": rss}, {
        "runner.plan_10kh_s": f"`speechtok run R -o OUT --plan` on {n:,} synthetic 10 s cuts "
                              f"(10,000 h, {manifest.stat().st_size / 1e6:.0f} MB gz), process "
                              f"start included; goal < 60 s; {busy}",
        "runner.plan_10kh_rss_mb": "peak RSS of that process (wait4); goal < 2048"})


def main() -> None:
    set_threads(1)
    parts = set(os.environ.get("BENCH_RUNNER_PARTS", "all").split(","))
    if parts & {"all", "plan"}:
        work = Path(tempfile.mkdtemp(prefix="bench_plan_"))
        try:
            plan_10kh(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not parts & {"all", "runs", "driver"}:
        return
    corpus = SHARED / "data" / "speechocean762-train80"
    if not corpus.exists():
        print(f"skipped: {corpus} is absent")
        return
    from speechtok.manifests.ingest import ingest

    work = Path(tempfile.mkdtemp(prefix="bench_runner_"))
    ing = ingest(corpus, work / "x1", kind="kaldi", progress=False)
    m1 = ing.cuts_path
    m10 = work / f"x{MULT}" / "cuts.jsonl.gz"
    _replicate(m1, m10, MULT)
    print(f"speechocean762-train80: {ing.num_cuts} cuts, {ing.hours:.2f} h; x{MULT}: "
          f"{ing.hours * MULT:.1f} h (work dir {work})")
    if not parts & {"all", "runs"}:
        b = _spawn(m1, work / "out-l2", "local", 2)
        _record_driver(b)
        shutil.rmtree(work, ignore_errors=True)
        return
    a = _spawn(m1, work / "out-l1", "local", 1)
    b = _spawn(m1, work / "out-l2", "local", 2)
    c = _spawn(m1, work / "out-r2", "ray", 2)
    d = _spawn(m10, work / f"out-l2-x{MULT}", "local", 2)
    sub = work / "model" / "cuts.jsonl.gz"
    _head(m1, sub, MODEL_CUTS)
    load_before = os.getloadavg()[0]
    w1 = _spawn(sub, work / "out-w1", "local", 1, "whisper")
    w2 = _spawn(sub, work / "out-w2", "local", 2, "whisper")
    load_after = os.getloadavg()[0]
    same = all((work / "out-l1" / "index.json").read_bytes() == (work / o / "index.json").read_bytes()
               for o in ("out-l2", "out-r2"))
    same_w = (work / "out-w1" / "index.json").read_bytes() == (work / "out-w2" / "index.json").read_bytes()
    overhead_1x = (a["total_cpu_s"] - a["stage_cpu_s"]) / a["stage_cpu_s"]
    overhead = (d["total_cpu_s"] - d["stage_cpu_s"]) / d["stage_cpu_s"]
    local_rate, ray_rate = b["audio_s"] / b["wall_s"], c["audio_s"] / c["wall_s"]
    figures = {
        "runner.overhead_frac": overhead,
        "runner.overhead_frac_1x": overhead_1x,
        "runner.rss_ratio_10x": d["rss_mb"] / b["rss_mb"],
        "runner.model_stage_wall_1_worker_s": w1["wall_s"],
        "runner.model_stage_wall_2_workers_s": w2["wall_s"],
        "runner.speedup_2_workers": w1["wall_s"] / w2["wall_s"],
        "runner.local_2_workers_audio_s_per_s": local_rate,
        "runner.ray_2_workers_audio_s_per_s": ray_rate,
        "runner.ray_vs_local": ray_rate / local_rate,
    }
    busy = f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)"
    model = (f"Whisper tiny.en encoder states (CTranslate2, 1 thread per worker), first "
             f"{MODEL_CUTS} cuts ({w1['audio_s'] / 60:.1f} min) of speechocean762-train80, "
             f"{MODEL_CUTS_PER_SHARD} cuts/shard")
    notes = {
        "runner.overhead_frac": (
            f"all CPU (runner+workers+forkserver) {d['total_cpu_s']:.1f} s vs stages' own "
            f"{d['stage_cpu_s']:.1f} s (decode+fbank+assign+fit; runner process "
            f"{d['runner_cpu_s']:.1f} s), x{MULT} {d['audio_s'] / 3600:.1f} h, 2 workers, "
            f"200 cuts/shard; goal <= 0.10; {busy}"),
        "runner.overhead_frac_1x": (
            f"all CPU {a['total_cpu_s']:.1f} s vs stages' own {a['stage_cpu_s']:.1f} s, 1x "
            f"{a['audio_s'] / 3600:.2f} h, 1 worker: fixed start-up (~3 s) dominates"),
        "runner.rss_ratio_10x": (
            f"runner peak RSS x{MULT} {d['rss_mb']:.0f} MiB / 1x {b['rss_mb']:.0f} MiB "
            f"(worker {d['worker_rss_mb']:.0f} / {b['worker_rss_mb']:.0f} MiB), 2 workers; "
            "goal <= 1.2"),
        "runner.model_stage_wall_1_worker_s": f"{model}; local pool, 1 worker (pool start incl.)",
        "runner.model_stage_wall_2_workers_s": (
            f"{model}; local pool, 2 workers; output identical to 1 worker: {same_w}"),
        "runner.speedup_2_workers": (
            f"model stage: wall 1 worker {w1['wall_s']:.1f} s / 2 workers {w2['wall_s']:.1f} s "
            f"({model}); goal >= 1.8, which needs 2 idle cores: load avg {load_before:.1f} before, "
            f"{load_after:.1f} after, on {os.cpu_count()} cores shared with other jobs; "
            f"fbank+k-means 1x: {a['wall_s']:.1f} / {b['wall_s']:.1f} s"),
        "runner.local_2_workers_audio_s_per_s": "fbank + k-means, 1x, local pool of 2 workers",
        "runner.ray_2_workers_audio_s_per_s": (
            f"fbank + k-means, 1x, Ray 2 actors (private instance on 127.0.0.1; start "
            f"{c['startup_s']:.0f} s not included)"),
        "runner.ray_vs_local": (
            f"Ray 2 workers {c['wall_s']:.0f} s vs local pool 2 {b['wall_s']:.0f} s (Ray start "
            f"{c['startup_s']:.0f} s not included); identical index: {same}; {busy}"),
    }
    peers = {"runner.speedup_2_workers": ["runner.model_stage_wall_1_worker_s",
                                          "runner.model_stage_wall_2_workers_s"],
             "runner.ray_vs_local": ["runner.local_2_workers_audio_s_per_s",
                                     "runner.ray_2_workers_audio_s_per_s"]}
    record(figures, notes, peers=peers)
    _record_driver(b)
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)  # ~2 GB of shards; BENCH_KEEP=1 keeps them


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    else:
        main()
