"""Reliability benchmark: transient I/O errors lose nothing; a rerun of a finished run is cheap.

Runs ``speechtok run`` (fbank + k-means units, local pool of 1 worker, torch pinned to 1
thread) as a user would, in subprocesses, over a generated tone corpus (60 cuts, 3 per shard
... 20 shards; no ``../shared`` needed):

- ``reliability.transient_lost_cuts``: cuts with no features after a run in which every 5th
  cut's first read fails with ``OSError(EIO)`` (``SPEECHTOK_FAULT_EIO=ID:1``, as a flaky
  network file system would), compared with a clean run; the goal is 0 (the reads are retried,
  ``--retries 3 --retry-backoff 0.05``). The run must also exit 0 and be byte-identical.
- ``reliability.noop_rerun_s``: wall seconds of ``speechtok run`` on the finished output
  (process start, imports, lock, index load, every shard found committed, report).

The branch ``reliability`` adds ``reliability.kill_resume_identical`` to this file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import record

N_CUTS = 60

RECIPE = """\
ingest: {source: CORPUS, sample_rate: 16000}
shards: {cuts_per_shard: 3}
stages:
  - {type: fbank, name: fbank, config: {num_mel_bins: 80}}
  - {type: kmeans_units, name: km, input: feats.fbank, config: {k: 16, iterations: 5, frame_budget: 20000}}
"""


def _run(recipe: Path, out: Path, *flags: str, env: dict[str, str] | None = None
         ) -> tuple[subprocess.CompletedProcess[str], float]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHTOK_FAULT")}
    full.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 **(env or {})})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "speechtok", "run", str(recipe), "-o",
                           str(out), "--no-progress", "--workers", "1", *flags],
                          env=full, capture_output=True, text=True)
    return proc, time.perf_counter() - t0


def _good_ids(out: Path) -> set[str]:
    """Ids of cuts with a non-empty ``feats.fbank`` row."""
    from speechtok.pipeline.shard_file import ShardFile
    from speechtok.pipeline.shard_index import ShardIndex, shard_path

    good: set[str] = set()
    index = ShardIndex.load(out)
    for e in index.entries("feats.fbank"):
        if index.committed("feats.fbank", e.shard) is None:
            continue
        sf = ShardFile(shard_path(out, e.shard, "feats.fbank"), e, group="feats.fbank",
                       checksum=False)
        ids = sf.all_ids().to_pylist()
        lengths = sf.lengths("feats")
        good |= {i for i, n in zip(ids, lengths, strict=True) if n > 0}
        sf.close()
    return good


def _digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((out / "shards").glob("*.arrow")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    from speechtok.manifests.tone_corpus import write_tone_corpus

    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        root = Path(tmp)
        corpus = write_tone_corpus(root / "corpus", N_CUTS, seed=0)
        recipe = root / "recipe.yaml"
        recipe.write_text(RECIPE.replace("CORPUS", str(corpus)))
        clean = root / "clean"
        proc, clean_s = _run(recipe, clean)
        if proc.returncode != 0:
            raise SystemExit(f"clean run failed:\n{proc.stderr[-3000:]}")
        proc, noop_s = _run(recipe, clean)
        if proc.returncode != 0:
            raise SystemExit(f"rerun failed:\n{proc.stderr[-3000:]}")
        with gzip.open(clean / "ingest" / "cuts.jsonl.gz", "rt") as fh:
            ids = [json.loads(line)["id"] for line in fh]
        flaky = ",".join(f"{cid}:1" for cid in ids[::5])
        faulty = root / "faulty"
        proc, faulty_s = _run(recipe, faulty, "--retries", "3", "--retry-backoff", "0.05",
                              env={"SPEECHTOK_FAULT_EIO": flaky})
        lost = len(_good_ids(clean) - _good_ids(faulty))
        identical = proc.returncode == 0 and _digest(clean) == _digest(faulty)
        print(f"clean run {clean_s:.1f} s; no-op rerun {noop_s:.2f} s; run with {len(ids[::5])} "
              f"transient EIO reads {faulty_s:.1f} s, exit {proc.returncode}, "
              f"byte-identical: {identical}")
        if not identical:
            print(proc.stderr[-3000:])
    record({"reliability.transient_lost_cuts": lost, "reliability.noop_rerun_s": noop_s},
           notes={"reliability.transient_lost_cuts":
                  f"{N_CUTS} cuts, every 5th read fails once with EIO; goal 0",
                  "reliability.noop_rerun_s":
                  f"`speechtok run` on a finished {N_CUTS}-cut fbank+k-means output (CLI, "
                  "process start included)"})


if __name__ == "__main__":
    main()
