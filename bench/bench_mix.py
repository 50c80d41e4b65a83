"""Weighted corpus mixing (`speechtok.trainers.mixing`): realised shares and padding.

Two sources like a large and a small corpus (lognormal lengths: 20,000 items of mean 200 units,
1,500 items of mean 80), weights 0.7 / 0.3, both cycling (``repeat: true``), bucketing with
``max_tokens`` 8192, ``max_batch`` 64 and the trainers' defaults for everything else
(`BatchingConfig`: ``pool_size`` 2048). The schedule runs for 100,000 batches
(no data is loaded: the figures depend only on the plan). Figures:

- ``mix.max_share_error``: the largest |share of a source - its weight| over every sliding window
  of 1,000 consecutive batches (goal <= 0.02);
- ``mix.padding_frac``: padded positions / all positions (``B * max_len`` per batch) with the
  default batching (goal < 0.05);
- ``mix.padding_frac_pool1024``: the same with ``pool_size`` 1024 (the default before 2026-12;
  the small source alone pads ~9% there: 64-item batches out of a 1,024-item sorted pool of a
  1,500-item corpus; the mix inherits each source's bucketing);
- ``mix.plan_us_per_batch``: CPU microseconds to plan one batch (schedule + per-source bucketing).

Run: ``.venv/bin/python -m bench --only mix``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.common import record, set_threads, timed
from speechtok.trainers.data import BatchingConfig
from speechtok.trainers.mixing import MixSchedule, mix_stats

N_BATCHES = 100_000


def _lengths(n: int, seed: int, mean: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(mean), 0.5, n), 5, 2000).astype(np.int64)


def main() -> None:
    set_threads(1)
    lengths = [_lengths(20000, 0, 200), _lengths(1500, 1, 80)]
    cfg = BatchingConfig(max_tokens=8192, max_batch=64, seed=0)  # the default pool_size
    sched = MixSchedule(lengths, [0.7, 0.3], [True, True], cfg)
    with timed() as t:
        stats = mix_stats(sched, N_BATCHES, window=1000)
    old = mix_stats(MixSchedule(lengths, [0.7, 0.3], [True, True], replace(cfg, pool_size=1024)), N_BATCHES)
    print(f"batches {N_BATCHES}, shares {np.round(stats['share'], 4).tolist()} (weights 0.7/0.3), "
          f"max window error {stats['max_share_error']:.4f}, padding {stats['padding_frac']:.4f}, "
          f"{t.cpu_s / N_BATCHES * 1e6:.1f} CPU us/batch (default pool_size {cfg.pool_size})")
    print(f"pool_size 1024: padding {old['padding_frac']:.4f}, max window error {old['max_share_error']:.4f}")
    record({"mix.max_share_error": stats["max_share_error"], "mix.padding_frac": stats["padding_frac"],
            "mix.padding_frac_pool1024": old["padding_frac"],
            "mix.plan_us_per_batch": t.cpu_s / N_BATCHES * 1e6},
           notes={"mix.max_share_error": "max |share - weight| over every 1,000-batch window, 100k batches, "
                  "2 sources 0.7/0.3 (goal <= 0.02)",
                  "mix.padding_frac": "padded / all positions over the same 100k batches, default batching "
                  f"(pool_size {cfg.pool_size}; goal < 0.05)",
                  "mix.padding_frac_pool1024": "the same with pool_size 1024 (the default before 2026-12)",
                  "mix.plan_us_per_batch": "CPU us per planned batch (schedule + bucketing), 1 thread"},
           units={"mix.max_share_error": "fraction", "mix.padding_frac": "fraction",
                  "mix.padding_frac_pool1024": "fraction", "mix.plan_us_per_batch": "us"},
           settings={"batches": N_BATCHES, "weights": [0.7, 0.3], "sources": [20000, 1500],
                     "max_tokens": 8192, "max_batch": 64, "pool_size": cfg.pool_size},
           timing=t, code=["speechtok/trainers/mixing.py", "speechtok/trainers/data.py"])


if __name__ == "__main__":
    main()
