"""Export throughput and memory: every streamed `speechtok export` format at 1x and 10x, 1 thread.

Corpus: an output directory built here from FSDD (real 8 kHz FLAC): 1x = 300 cuts, 10x = 3,000
cuts, each with ``units.km50`` (25 units/s), ``codes.q4`` (75 frames/s, 4 codebooks) and
``feats.d80`` (100 frames/s, 80-dim float16) groups (random values; only sizes matter here),
100 rows per shard. Each export runs in a fresh subprocess, so peak RSS (VmHWM) is its own.

Figures, per format F in `FORMATS` (the 10x run):
- ``export.F.mb_s``: MB (10^6 bytes) written to the destination per wall second;
- ``export.F.rss_mb_1x``, ``export.F.rss_mb_10x``: peak RSS of the 1x and 10x runs (MiB);
- ``export.rss_ratio_10x``: the largest 10x/1x peak-RSS ratio over the formats (goal <= 1.2).

Run: ``.venv/bin/python -m bench --only export``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import SHARED, record, set_threads

FORMATS = ("parquet", "hf-audio", "lhotse", "fairseq", "memmap", "slam", "nemo", "espnet")
SIZES = {"1x": 300, "10x": 3000}

_CHILD = r"""
import json, sys, time
src, fmt, dest = sys.argv[1], sys.argv[2], sys.argv[3]
groups = ["units.km50"] if fmt in ("fairseq", "memmap") else None
t0, c0 = time.perf_counter(), time.process_time()
from speechtok.exports.formats import export_output
n = export_output(src, fmt, dest, groups=groups)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
rss = 0.0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024.0
print(json.dumps({"rows": n, "wall_s": wall, "cpu_s": cpu, "rss_mb": rss}))
"""


def build_output(out: Path, files: list[Path], n: int) -> None:
    """An output of `n` cuts over the FSDD `files` (cycled) with units, codes and feats groups."""
    import soundfile as sf

    from speechtok.shards.schema import GroupMeta
    from speechtok.shards.writer import commit_group_shard

    metas = {
        "cuts": GroupMeta(group="cuts", kind="cuts", stage="ingest", stage_version="1", config={}, fingerprint="c"),
        "units.km50": GroupMeta(group="units.km50", kind="units", stage="kmeans", stage_version="1", config={},
                                fingerprint="u", frame_rate=25.0, vocab_size=50),
        "codes.q4": GroupMeta(group="codes.q4", kind="codes", stage="codec", stage_version="1", config={},
                              fingerprint="q", frame_rate=75.0, vocab_size=1024, num_codebooks=4),
        "feats.d80": GroupMeta(group="feats.d80", kind="feats", stage="fbank", stage_version="1", config={},
                               fingerprint="f", frame_rate=100.0, dim=80, dtype="float16"),
    }
    rng = np.random.default_rng(0)
    rows: dict[str, list[dict]] = {g: [] for g in metas}
    shard = 0
    for i in range(n):
        path = files[i % len(files)]
        info = sf.info(str(path))
        dur = info.frames / info.samplerate
        cid = f"c{i:06d}"
        rec = {"id": f"r{i:06d}", "sources": [{"type": "file", "channels": [0], "source": str(path)}],
               "sampling_rate": info.samplerate, "num_samples": info.frames, "duration": dur}
        sup = {"id": cid, "recording_id": rec["id"], "start": 0.0, "duration": dur, "channel": 0,
               "text": path.stem.split("_")[0], "speaker": path.stem.split("_")[1]}
        cut = {"id": cid, "start": 0.0, "duration": dur, "channel": 0, "recording": rec,
               "supervisions": [sup], "type": "MonoCut"}
        rows["cuts"].append({"id": cid, "recording_id": rec["id"], "start": 0.0, "duration": dur,
                             "sampling_rate": info.samplerate, "text": sup["text"], "speaker": sup["speaker"],
                             "cut": json.dumps(cut)})
        rows["units.km50"].append({"id": cid, "units": rng.integers(0, 50, max(1, int(dur * 25)))})
        rows["codes.q4"].append({"id": cid, "codes": rng.integers(0, 1024, (max(1, int(dur * 75)), 4))})
        rows["feats.d80"].append({"id": cid, "feats": rng.standard_normal((max(1, int(dur * 100)), 80))
                                  .astype(np.float16)})
        if len(rows["cuts"]) == 100 or i == n - 1:
            for g, meta in metas.items():
                commit_group_shard(out, shard, meta, rows[g])
            rows = {g: [] for g in metas}
            shard += 1


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _run(src: Path, fmt: str, dest: Path) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(src), fmt, str(dest)], capture_output=True,
                          text=True, env=env, check=True, cwd=Path(__file__).resolve().parents[1])
    res: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["bytes"] = float(_size(dest))
    return res


def main() -> None:
    set_threads(1)
    fsdd = SHARED / "data" / "fsdd" / "audio"
    if not fsdd.is_dir():
        print(f"bench_export: skipped, {fsdd} is absent")
        return
    files = sorted(fsdd.glob("*.flac"))
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        t = Path(tmp)
        for size, n in SIZES.items():
            build_output(t / f"out{size}", files, n)
        print(f"{'format':10s} {'size':>4s} {'rows':>6s} {'MB':>8s} {'wall s':>7s} {'MB/s':>7s} {'RSS MiB':>8s}")
        for fmt in FORMATS:
            res = {}
            for size in SIZES:
                r = _run(t / f"out{size}", fmt, t / f"{fmt}-{size}")
                res[size] = r
                print(f"{fmt:10s} {size:>4s} {int(r['rows']):6d} {r['bytes'] / 1e6:8.1f} {r['wall_s']:7.2f} "
                      f"{r['bytes'] / 1e6 / r['wall_s']:7.1f} {r['rss_mb']:8.0f}", flush=True)
            ten, one = res["10x"], res["1x"]
            figures[f"export.{fmt}.mb_s"] = ten["bytes"] / 1e6 / ten["wall_s"]
            figures[f"export.{fmt}.rss_mb_1x"] = one["rss_mb"]
            figures[f"export.{fmt}.rss_mb_10x"] = ten["rss_mb"]
            ratios[fmt] = ten["rss_mb"] / one["rss_mb"]
            notes[f"export.{fmt}.mb_s"] = (f"--to {fmt}, 3,000 FSDD cuts + units/codes/feats.d80, "
                                           "MB written per wall s, 1 thread, fresh process")
            notes[f"export.{fmt}.rss_mb_1x"] = f"--to {fmt}, peak RSS (VmHWM) exporting 300 cuts"
            notes[f"export.{fmt}.rss_mb_10x"] = f"--to {fmt}, peak RSS (VmHWM) exporting 3,000 cuts"
    worst = max(ratios, key=lambda k: ratios[k])
    figures["export.rss_ratio_10x"] = ratios[worst]
    notes["export.rss_ratio_10x"] = (f"largest peak-RSS ratio 10x/1x over {len(ratios)} formats "
                                     f"(worst: {worst}; goal <= 1.2)")
    record(figures, notes, settings={"cuts_1x": SIZES["1x"], "cuts_10x": SIZES["10x"], "formats": list(FORMATS)},
           units={k: "MB/s" for k in figures if k.endswith(".mb_s")},
           peers={"export.rss_ratio_10x": [f"export.{worst}.rss_mb_10x", f"export.{worst}.rss_mb_1x"]},
           code=["speechtok/exports/formats.py", "speechtok/exports/hf_audio.py", "speechtok/exports/espnet.py",
                 "speechtok/exports/nemo.py", "speechtok/exports/shar.py", "speechtok/exports/slam.py",
                 "speechtok/exports/audio.py", "speechtok/exports/jsonl.py"])


if __name__ == "__main__":
    main()
