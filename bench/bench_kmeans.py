"""k-means: speechtok's faiss fit vs fairseq's `learn_kmeans.py` MiniBatchKMeans, run for real.

Real features: 80-bin filterbanks of all of speechocean762-train80 (~566k frames, `bench.realdata`),
K=100 (fairseq's HuBERT first-iteration recipe clusters MFCC/fbank frames into 100 units).
Same frames, same thread count (1), best of `REPEATS` runs interleaved (ours, theirs, ours,
theirs), wall and CPU seconds of both.

- ours: `fit_kmeans` with its defaults (20 Lloyd iterations over every frame, greedy k-means++
  init on 10k frames); `frame_budget` = all frames, so both sides see the same data.
- theirs: scikit-learn `MiniBatchKMeans` exactly as fairseq's `learn_kmeans.py` builds it
  (`init="k-means++"`, `max_iter=100`, `batch_size=10000`, `tol=0.0`,
  `max_no_improvement=100`, `init_size=None`, `n_init=20`, `reassignment_ratio=0.0`,
  `compute_labels=False`), run to completion (its own early stopping); `verbose=0` instead of
  fairseq's 1 (printing only), `random_state=0` for repeatability.
- inertia: both sides' centroids scored on all frames (`inertia_of`).
- equal passes: ours after `EQUAL_PASSES` Lloyd iterations vs MBKM with one init and exactly
  `EQUAL_PASSES` passes (`max_no_improvement=None`).
- floor (synthetic scaling data, 100k x 768 Gaussian mixture, K=500): 2*N*K*D FLOPs per Lloyd
  iteration per CPU second over the sgemm rate measured in this run (`bench.floors`).
- assignment: 300k x 768 frames to K=1000 in 100k batches vs 2*N*K*D at the measured rate.
- memory: peak RSS of a fit over `.npy` features 10x the frame budget vs exactly the budget,
  each in a fresh subprocess.

Run: `.venv/bin/python -m bench --only kmeans` (env BENCH_KMEANS_QUICK=1: a smoke run, nothing
recorded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import Fig, Timing, best_of, peak_rss_mb, record, set_threads, timed

QUICK = os.environ.get("BENCH_KMEANS_QUICK") == "1"
K = 100
REPEATS = 1 if QUICK else 2
EQUAL_PASSES = 3 if QUICK else 10
SYN_N, SYN_D, SYN_K, SYN_ITERS = (20_000, 768, 100, 2) if QUICK else (100_000, 768, 500, 3)
ASSIGN_N, ASSIGN_K, ASSIGN_BATCH = (100_000, 1000, 50_000) if QUICK else (300_000, 1000, 100_000)
RSS_BUDGET = 10_000 if QUICK else 50_000
FAIRSEQ = dict(init="k-means++", max_iter=100, batch_size=10_000, tol=0.0, max_no_improvement=100,
               init_size=None, n_init=20, reassignment_ratio=0.0, compute_labels=False)
CODE = ["speechtok/tokenizers/kmeans.py", "speechtok/tokenizers/kmeans_init.py",
        "speechtok/tokenizers/kmeans_sampling.py", "bench/realdata.py", "bench/floors.py"]


def structured_frames(n: int, d: int, seed: int = 0, components: int = 1000) -> np.ndarray:
    """`(n, d)` float32 Gaussian mixture with decaying per-dimension noise (scaling data only)."""
    rng = np.random.default_rng(seed)
    means = (rng.standard_normal((components, d)) * 0.6).astype(np.float32)
    scale = (1.0 / np.sqrt(1.0 + np.arange(d) / 32.0)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        lab = rng.integers(0, components, m)
        out[s : s + m] = means[lab] + rng.standard_normal((m, d), dtype=np.float32) * scale
    return out


def ours(x: np.ndarray, k: int, iterations: int) -> tuple[Timing, np.ndarray, list[float]]:
    """Default `fit_kmeans` (all frames); its timing, centroids `(k, D)` and per-iteration CPU s."""
    from bench.common import _cpu_now
    from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
    from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource

    marks: list[float] = []
    cfg = KMeansConfig(k=k, iterations=iterations, frame_budget=len(x))
    with timed() as t:
        model = fit_kmeans(ArrayFrameSource([x]), cfg, on_iteration=lambda r, i, o: marks.append(_cpu_now()))
    per_iter = list(np.diff(marks))
    return t, model.centroids, per_iter


def theirs(x: np.ndarray, k: int, **override: object) -> tuple[Timing, np.ndarray, int]:
    """fairseq's MiniBatchKMeans configuration (with `override`), fit to completion."""
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=k, verbose=0, random_state=0, **{**FAIRSEQ, **override})
    with timed() as t:
        km.fit(x)
    return t, km.cluster_centers_.astype(np.float32), int(km.n_steps_)


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM): unlike ru_maxrss, not inherited across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024.0
    return peak_rss_mb()


def rss_child(paths: list[str], budget: int) -> None:
    """Subprocess body: one fit over `.npy` files; prints peak RSS (and after imports) as JSON."""
    import faiss

    from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
    from speechtok.tokenizers.kmeans_sampling import NpyFrameSource

    faiss.omp_set_num_threads(1)
    base = _vm_hwm_mb()
    fit_kmeans(NpyFrameSource(paths), KMeansConfig(k=100, iterations=2, frame_budget=budget))
    print(json.dumps({"peak_rss_mb": _vm_hwm_mb(), "base_rss_mb": base}))


def rss_ratio(tmp: Path) -> tuple[float, float, float]:
    """Peak RSS of a fit over 10x the budget vs exactly the budget (separate processes)."""
    files = []
    for i in range(10):
        p = tmp / f"feats{i}.npy"
        np.save(p, structured_frames(RSS_BUDGET, SYN_D, seed=100 + i, components=200).astype(np.float16))
        files.append(str(p))

    def run(paths: list[str]) -> float:
        cmd = [sys.executable, "-m", "bench.bench_kmeans", "--rss-child", str(RSS_BUDGET), *paths]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1])
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  rss child over {len(paths)} file(s): {doc}")
        return float(doc["peak_rss_mb"])

    one = run(files[:1])
    ten = run(files)
    return ten / one, one, ten


def main() -> None:
    from bench.floors import sgemm_gflops
    from bench.realdata import have_corpus, speechocean_fbank
    from speechtok.tokenizers.kmeans import KMeansConfig, KMeansModel, inertia_of

    if not have_corpus():
        raise SystemExit("bench_kmeans needs ../shared/data/speechocean762-train80 (real features); "
                         "set SPEECHTOK_SHARED to the shared folder")
    set_threads(1)
    x = speechocean_fbank()
    if QUICK:
        x = x[:60_000]
    n, d = x.shape
    print(f"bench_kmeans: fbank {n} x {d}, K={K}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")

    # fairseq's configuration run to completion vs our default fit, interleaved, best of REPEATS
    o_runs: list[Timing] = []
    t_runs: list[Timing] = []
    for _ in range(REPEATS):
        t, c_ours, _ = ours(x, K, 20)
        o_runs.append(t)
        t, c_mbkm, steps = theirs(x, K)
        t_runs.append(t)
        print(f"  ours {o_runs[-1]}; fairseq mbkm {t_runs[-1]} ({steps} steps)", flush=True)
    to, tt = best_of(o_runs), best_of(t_runs)
    in_ours, in_mbkm = inertia_of(x, c_ours), inertia_of(x, c_mbkm)

    # equal passes: one init each, EQUAL_PASSES passes over all frames
    te_o, c_eo, _ = ours(x, K, EQUAL_PASSES)
    te_t, c_et, steps_e = theirs(x, K, n_init=1, max_iter=EQUAL_PASSES, max_no_improvement=None)
    in_eo, in_et = inertia_of(x, c_eo), inertia_of(x, c_et)
    print(f"  equal passes ({EQUAL_PASSES}): ours {te_o}, mbkm {te_t} ({steps_e} steps)")

    # floor: Lloyd iterations on synthetic 768-d data vs the sgemm rate measured now
    with timed() as t_floor:
        floor = sgemm_gflops(1)["gflops"]
    syn = structured_frames(SYN_N, SYN_D)
    _, _, per_iter = ours(syn, SYN_K, SYN_ITERS + 1)
    iter_cpu = min(per_iter)
    efficiency = 2.0 * SYN_N * SYN_K * SYN_D / iter_cpu / (floor * 1e9)
    del syn

    pool = structured_frames(ASSIGN_BATCH, SYN_D, seed=7)
    model = KMeansModel(centroids=pool[:ASSIGN_K].copy(), config=KMeansConfig(k=ASSIGN_K), dim=SYN_D)
    with timed() as t_assign:
        done = 0
        while done < ASSIGN_N:
            model.assign(pool, batch_size=ASSIGN_BATCH)
            done += len(pool)
    assign_floor_s = 2.0 * ASSIGN_N * ASSIGN_K * SYN_D / (floor * 1e9)
    del pool, model
    print(f"  floor {floor:.1f} GFLOP/CPU-s: Lloyd iter {iter_cpu:.2f} CPU s ({efficiency:.2f}); "
          f"assign {t_assign.cpu_s:.1f} CPU s vs {assign_floor_s:.1f}")

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        ratio, rss1, rss10 = rss_ratio(Path(tmp))

    run_s = f"{n} x {d} fbank frames (speechocean762-train80), K={K}, 1 thread"
    figures: dict[str, float | Fig] = {
        "kmeans.fairseq_mbkm_cpu_s": Fig(tt.cpu_s, timing=tt),
        "kmeans.fairseq_mbkm_wall_s": Fig(tt.wall_s, timing=tt),
        "kmeans.fit_cpu_s": Fig(to.cpu_s, timing=to),
        "kmeans.fit_wall_s": Fig(to.wall_s, timing=to),
        "kmeans.speedup_vs_fairseq_mbkm": Fig(tt.cpu_s / to.cpu_s, timing=to,
                                              peers=["kmeans.fairseq_mbkm_cpu_s"]),
        "kmeans.speedup_vs_fairseq_mbkm_wall": Fig(tt.wall_s / to.wall_s, timing=to,
                                                   peers=["kmeans.fairseq_mbkm_wall_s"]),
        "kmeans.fairseq_mbkm_inertia": Fig(in_mbkm, unit="sum sq. L2", timing=tt),
        "kmeans.inertia_ratio": Fig(in_ours / in_mbkm, timing=to, peers=["kmeans.fairseq_mbkm_inertia"]),
        "kmeans.equal_passes_mbkm_cpu_s": Fig(te_t.cpu_s, timing=te_t),
        "kmeans.speedup_equal_passes": Fig(te_t.cpu_s / te_o.cpu_s, timing=te_o,
                                           peers=["kmeans.equal_passes_mbkm_cpu_s"]),
        "kmeans.equal_passes_mbkm_inertia": Fig(in_et, unit="sum sq. L2", timing=te_t),
        "kmeans.inertia_ratio_equal_passes": Fig(in_eo / in_et, timing=te_o,
                                                 peers=["kmeans.equal_passes_mbkm_inertia"]),
        "kmeans.floor_sgemm_gflops_1t": Fig(floor, timing=t_floor),
        "kmeans.floor_efficiency": Fig(efficiency, peers=["kmeans.floor_sgemm_gflops_1t"],
                                       settings={"data": f"synthetic {SYN_N} x {SYN_D}, K={SYN_K}"}),
        "assign.time_over_floor": Fig(t_assign.cpu_s / assign_floor_s, timing=t_assign,
                                      peers=["kmeans.floor_sgemm_gflops_1t"]),
        "kmeans.rss_ratio_10x": ratio,
    }
    if QUICK:  # a smoke run: print, do not record
        print(json.dumps({k: v.value if isinstance(v, Fig) else v for k, v in figures.items()}, indent=1))
        return
    settings = {"frames": n, "dim": d, "k": K, "threads": 1, "repeats": REPEATS,
                "data": "speechocean762-train80 fbank 80 (bench.realdata)",
                "fairseq": {**FAIRSEQ, "verbose": 0, "random_state": 0}}
    record(figures, notes={
        "kmeans.fairseq_mbkm_cpu_s": (f"MiniBatchKMeans as learn_kmeans.py, run to completion "
                                      f"({steps} steps, n_init=20); {run_s}; best of {REPEATS} interleaved"),
        "kmeans.fairseq_mbkm_wall_s": "the same run's wall time (shared machine: see load)",
        "kmeans.fit_cpu_s": f"fit_kmeans defaults (20 Lloyd iterations on all frames, k-means++ on 10k); {run_s}",
        "kmeans.fit_wall_s": "the same run's wall time",
        "kmeans.speedup_vs_fairseq_mbkm": f"CPU s, fairseq MBKM config run to completion / ours; {run_s}",
        "kmeans.speedup_vs_fairseq_mbkm_wall": "the same on wall time (distorted when the machine is loaded)",
        "kmeans.inertia_ratio": "ours / fairseq MBKM, both scored on all frames (< 1: ours is better)",
        "kmeans.speedup_equal_passes": (f"CPU s to {EQUAL_PASSES} passes over all frames, one init each "
                                        f"(MBKM max_no_improvement=None)"),
        "kmeans.inertia_ratio_equal_passes": f"both after {EQUAL_PASSES} passes, scored on all frames",
        "kmeans.floor_sgemm_gflops_1t": "float32 matmul GFLOP per CPU s measured in this run (bench.floors)",
        "kmeans.floor_efficiency": (f"2*N*K*D per Lloyd iteration (best CPU s, 1 thread) / measured sgemm rate; "
                                    f"synthetic {SYN_N} x {SYN_D}, K={SYN_K}"),
        "assign.time_over_floor": (f"CPU s to assign {ASSIGN_N} x {SYN_D} to K={ASSIGN_K} in {ASSIGN_BATCH} batches / "
                                   f"(2*N*K*D at the measured rate = {assign_floor_s:.1f} s)"),
        "kmeans.rss_ratio_10x": (f"peak RSS, fit over 10x {RSS_BUDGET} frames (.npy, 10 files) vs {RSS_BUDGET} "
                                 f"({rss10:.0f} vs {rss1:.0f} MB)"),
    }, settings=settings, threads=1, code=CODE)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--rss-child":
        rss_child(sys.argv[3:], int(sys.argv[2]))
    else:
        main()
