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

- ``reliability.kill_resume_identical`` (1 = true): a small training run (the shared loop of
  `speechtok.trainers.loop`, AdamW, dropout, 30 steps, a checkpoint every 4 steps, torch on 1
  thread) is SIGKILLed inside its 3rd checkpoint save at each of the 5 fault points of
  `speechtok.models.checkpoint` (``SPEECHTOK_FAULT``), then rerun to the end; true when every
  resumed run's loss curve (`read_metrics`) is bit-identical to an uninterrupted run's. Each run
  is its own ``python`` process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
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
    from speechtok.shards.file import ShardFile
    from speechtok.shards.index import ShardIndex, shard_path

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


POINTS = ("ckpt_after_model", "ckpt_before_rename", "ckpt_after_rename", "ckpt_after_latest", "ckpt_mid_prune")

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path

    import numpy as np
    import torch
    from torch import nn

    from speechtok.trainers.data import BatchingConfig, BatchLoader, pad_2d
    from speechtok.trainers.loop import LoopConfig, train

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = []
    for _ in range(80):
        n, y = int(rng.integers(3, 16)), int(rng.integers(0, 3))
        items.append((rng.normal(size=(n, 6)).astype(np.float32) + y, y))
    lengths = np.array([len(x) for x, _ in items])

    def collate(batch):
        x, n = pad_2d([x for x, _ in batch])
        return x, n, torch.tensor([y for _, y in batch])

    def loss_fn(model, batch):
        x, n, y = batch
        mask = (torch.arange(x.shape[1])[None] < n[:, None]).float().unsqueeze(-1)
        return nn.functional.cross_entropy(model((x * mask).sum(1) / n[:, None]), y)

    loader = BatchLoader(items, lengths, collate, BatchingConfig(max_tokens=100, seed=3))
    cfg = LoopConfig(max_steps=30, lr=3e-3, warmup_steps=3, log_every=1, checkpoint_every=4,
                     keep_checkpoints=2, seed=7, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.2), nn.Linear(16, 3))
    train(model, loss_fn, loader, cfg, Path(sys.argv[1]))
""")


def _train(run: Path, fault: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "SPEECHTOK_FAULT"}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "AUTO,STRICT"})
    if fault:
        env["SPEECHTOK_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", DRIVER, str(run)], env=env, capture_output=True,
                          text=True, timeout=900).returncode


def _losses(run: Path) -> dict[int, float]:
    from speechtok.trainers.loop import read_metrics

    return {int(r["step"]): float(r["loss"]) for r in read_metrics(run) if "loss" in r}


def kill_resume_identical(tmp: Path) -> tuple[bool, list[str]]:
    """(all 5 kill points resumed bit-identically, a line per point)."""
    from speechtok.models.checkpoint import latest_checkpoint

    full = tmp / "full"
    if _train(full) != 0:
        raise SystemExit("the uninterrupted run failed")
    want = _losses(full)
    ok, lines = True, []
    for point in POINTS:
        run = tmp / point
        rc = _train(run, f"{point}:{1 if point == 'ckpt_mid_prune' else 3}")
        ckpt = latest_checkpoint(run)
        step = json.loads((ckpt / "trainer.json").read_text())["step"] if ckpt else None
        rerun = _train(run)
        same = rc == -signal.SIGKILL and rerun == 0 and _losses(run) == want
        ok &= same
        lines.append(f"{point:<20} killed rc={rc} resumed from step {step}, rerun rc={rerun}, "
                     f"loss curve identical: {same}")
    return ok, lines


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

    with tempfile.TemporaryDirectory(prefix="bench-reliability-ckpt-") as tmp:
        ok, lines = kill_resume_identical(Path(tmp))
    print("\n".join(lines))
    record({"reliability.kill_resume_identical": 1.0 if ok else 0.0},
           notes={"reliability.kill_resume_identical":
                  "SIGKILL inside a checkpoint save at 5 points, then rerun: loss curve bit-identical "
                  "to an uninterrupted 30-step run (1 = true); goal 1"},
           units={"reliability.kill_resume_identical": "bool"}, threads=1,
           code=["speechtok/models/checkpoint.py", "speechtok/trainers/loop.py"])

if __name__ == "__main__":
    main()
