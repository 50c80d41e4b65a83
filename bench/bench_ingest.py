"""Ingest throughput and memory: FSDD (3,000 FLAC files, 8 kHz) at 1x and 10x, 1 thread.

Each measured run is a fresh subprocess (so that peak RSS is that run's own); the 10x corpus is
the same directory replicated through symlinks into 10 subdirectories (30,000 files, distinct
ids). Figures:

- ``ingest.files_per_s``, ``ingest.audio_hours_per_s``: the 10x run, wall clock, 1 thread
  (every file fully decoded and validated, cuts written gzip'd).
- ``ingest.files_per_cpu_s``: the same per CPU second (robust on a shared machine).
- ``ingest.rss_ratio_10x``: peak RSS (VmHWM) of the 10x run / the 1x run (goal <= 1.2);
  ``ingest.rss_growth_mb_10x`` the difference in MiB.
- ``ingest.hf.files_per_s``, ``ingest.hf.files_per_cpu_s``: ``ingest --kind hf`` of the same 3,000
  FSDD files as a Hugging Face dataset (Parquet, embedded FLAC bytes, built with `datasets`),
  every entry decoded and validated from its bytes, audio referenced in place; 1 thread, wall.
  ``ingest.hf.rss_mb``: its peak RSS.
- Peers, on the 1x corpus: ``ingest.peer_decode_only_files_per_s`` (soundfile.read of every
  file, nothing else: the decoding floor) and ``ingest.peer_lhotse_from_dir_files_per_s``
  (lhotse `RecordingSet.from_dir`, 1 job: header probing only, no validation).

Run: ``.venv/bin/python -m bench.bench_ingest``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import SHARED, record, set_threads

FSDD_RX = r"(?P<text>\d)_(?P<speaker>[a-z]+)_\d+"

_CHILD = r"""
import json, resource, sys, time
mode, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0, c0 = time.perf_counter(), time.process_time()
if mode == "ingest":
    from speechtok.manifests.ingest import ingest
    r = ingest(src, out, label_regex=sys.argv[4], progress=False)
    files, hours = r.num_recordings, r.hours
elif mode == "hf":
    from speechtok.manifests.ingest import ingest
    r = ingest(src, out, kind="hf", text_column="text", speaker_column="speaker", progress=False)
    files, hours = r.num_recordings, r.hours
elif mode == "decode":
    import os, soundfile as sf
    files, secs = 0, 0.0
    for root, _, names in os.walk(src):
        for n in sorted(names):
            x, sr = sf.read(os.path.join(root, n), dtype="float32")
            files += 1
            secs += len(x) / sr
    hours = secs / 3600
else:
    from lhotse import RecordingSet
    rs = RecordingSet.from_dir(src, pattern="*.flac", num_jobs=1)
    files, hours = len(rs), sum(r.duration for r in rs) / 3600
# VmHWM: this process image's own peak (ru_maxrss would include the parent's RSS at fork time,
# which Linux carries across exec).
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            rss_mb = int(line.split()[1]) / 1024.0
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "rss_mb": rss_mb,
                  "files": files, "hours": hours}))
"""


def _run(mode: str, src: Path, out: Path) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(src), str(out), FSDD_RX],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _replicate(src: Path, dst: Path, times: int) -> None:
    names = sorted(os.listdir(src))
    for k in range(times):
        d = dst / f"copy{k:02d}"
        d.mkdir(parents=True)
        for n in names:
            (d / n).symlink_to(src / n)


def _hf_dataset(src: Path, dest: Path) -> None:
    """FSDD as a Hugging Face Parquet dataset with embedded FLAC bytes (one file per 500 rows)."""
    import datasets

    names = sorted(os.listdir(src))
    for k in range(0, len(names), 500):
        part = names[k:k + 500]
        ds = datasets.Dataset.from_dict({
            "audio": [{"bytes": (src / n).read_bytes(), "path": n} for n in part],
            "text": [n.split("_")[0] for n in part], "speaker": [n.split("_")[1] for n in part]})
        ds = ds.cast_column("audio", datasets.Audio(decode=False))  # (encoding needs torchcodec)
        (dest / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(dest / "data" / f"train-{k // 500:05d}.parquet"))


def main() -> None:
    set_threads(1)
    fsdd = SHARED / "data" / "fsdd" / "audio"
    if not fsdd.is_dir():
        print(f"bench_ingest: skipped, {fsdd} is absent")
        return
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        t = Path(tmp)
        one, ten = t / "x1", t / "x10"
        _replicate(fsdd, one, 1)
        _replicate(fsdd, ten, 10)
        r1 = _run("ingest", one, t / "out1")
        r10 = _run("ingest", ten, t / "out10")
        dec = _run("decode", one, t / "unused")
        lh = _run("lhotse", one, t / "unused")
        _hf_dataset(fsdd, t / "hf")
        hf = _run("hf", t / "hf", t / "out_hf")
    rows = [("ingest 1x", r1), ("ingest 10x", r10), ("decode only 1x", dec), ("lhotse from_dir 1x", lh),
            ("ingest --kind hf 1x", hf)]
    print(f"{'run':22s} {'files':>7s} {'hours':>7s} {'wall s':>8s} {'cpu s':>8s} {'files/s':>8s} {'RSS MiB':>8s}")
    for name, r in rows:
        print(
            f"{name:22s} {int(r['files']):7d} {r['hours']:7.3f} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} "
            f"{r['files'] / r['wall_s']:8.0f} {r['rss_mb']:8.0f}"
        )
    record(
        {
            "ingest.files_per_s": r10["files"] / r10["wall_s"],
            "ingest.files_per_cpu_s": r10["files"] / r10["cpu_s"],
            "ingest.audio_hours_per_s": r10["hours"] / r10["wall_s"],
            "ingest.rss_ratio_10x": r10["rss_mb"] / r1["rss_mb"],
            "ingest.rss_growth_mb_10x": r10["rss_mb"] - r1["rss_mb"],
            "ingest.peer_decode_only_files_per_s": dec["files"] / dec["wall_s"],
            "ingest.peer_lhotse_from_dir_files_per_s": lh["files"] / lh["wall_s"],
            "ingest.hf.files_per_s": hf["files"] / hf["wall_s"],
            "ingest.hf.files_per_cpu_s": hf["files"] / hf["cpu_s"],
            "ingest.hf.rss_mb": hf["rss_mb"],
        },
        notes={
            "ingest.files_per_s": ("FSDD x10 (30k FLAC, 8 kHz), full decode+validation, 1 thread, "
                                   "wall (shared 2-core machine)"),
            "ingest.files_per_cpu_s": "same run per CPU second",
            "ingest.audio_hours_per_s": "FSDD x10, hours of audio validated per wall second, 1 thread",
            "ingest.rss_ratio_10x": "peak RSS 30k files / 3k files, fresh processes (goal <= 1.2)",
            "ingest.rss_growth_mb_10x": "peak RSS difference 10x - 1x in MiB (ids kept for duplicate check)",
            "ingest.peer_decode_only_files_per_s": ("peer floor: soundfile.read of every FSDD file, "
                                                    "no validation/output"),
            "ingest.peer_lhotse_from_dir_files_per_s": "peer: lhotse RecordingSet.from_dir, 1 job, header probe only",
            "ingest.hf.files_per_s": "ingest --kind hf: FSDD 3k entries as Parquet with embedded FLAC bytes, "
            "decoded+validated from bytes, referenced in place, 1 thread, wall",
            "ingest.hf.files_per_cpu_s": "same run per CPU second",
            "ingest.hf.rss_mb": "peak RSS (VmHWM) of that run",
        },
        code=["speechtok/manifests/sources/hf.py", "speechtok/manifests/audio_bytes.py", "speechtok/hf_rows.py"],
    )


if __name__ == "__main__":
    main()
