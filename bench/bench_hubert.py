"""HuBERT-base-sized SSL features (random weights, `HubertConfig()` defaults), 1 thread.

Audio: the first speechocean762 utterances, about 30 s in all (enough for a stable per-core
figure at ~0.2 RTF; the whole run stays around a minute of CPU). HuBERT-base has a group-norm
feature encoder, so batches hold only signals of exactly equal length (exact-length buckets).

Figures (real-time factor = CPU seconds per audio second; lower is better):
- ``hubert.rtf_per_core``: all 12 layers (layer 12 = last_hidden_state), cuts one by one as the
  exact-length bucketing gives them (varied lengths: buckets of one).
- ``hubert.rtf_per_core_l6``: layer 6 only, stopping the forward pass after layer 6.
- ``hubert.rtf_per_core_b8``: 12 layers, batches of 8 equal-length 4 s segments (the
  throughput bucketing reaches when lengths repeat).
- ``hubert.rtf_per_core_b1_4s``: the same 4 s segments one by one (the b8 baseline).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import SHARED, peak_rss_mb, record, set_threads, timed

TARGET_SECONDS = 30.0


def main() -> None:
    set_threads(1)
    import torch
    import transformers as tf

    from speechtok.features.ssl import SSLFeatureExtractor

    root = SHARED / "data" / "speechocean762-train80"
    waves: list[np.ndarray] = []
    for line in (root / "wav.scp").read_text().split("\n"):
        if not line.strip():
            continue
        waves.append(sf.read(root / line.split()[1], dtype="float32")[0])
        if sum(len(w) for w in waves) >= TARGET_SECONDS * 16000:
            break
    audio_s = sum(len(w) for w in waves) / 16000
    seg = np.concatenate(waves)[: 8 * 64000].reshape(8, 64000)  # 8 x 4 s
    seg_s = seg.size / 16000

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        tf.HubertModel(tf.HubertConfig()).save_pretrained(Path(tmp) / "hubert")
        full = SSLFeatureExtractor(Path(tmp) / "hubert", layers=(12,))
        l6 = SSLFeatureExtractor(Path(tmp) / "hubert", layers=(6,))
        full.extract(waves[0][:16000])  # warm-up
        res = {}
        with timed() as t:
            full.extract_batch(waves)
        res["full"] = t
        with timed() as t:
            l6.extract_batch(waves)
        res["l6"] = t
        with timed() as t:
            full.extract_batch(list(seg))  # one bucket of 8 equal lengths
        res["b8"] = t
        with timed() as t:
            for s in seg:
                full.extract(s)
        res["b1"] = t
    figures = {
        "hubert.rtf_per_core": res["full"].cpu_s / audio_s,
        "hubert.rtf_per_core_l6": res["l6"].cpu_s / audio_s,
        "hubert.rtf_per_core_b8": res["b8"].cpu_s / seg_s,
        "hubert.rtf_per_core_b1_4s": res["b1"].cpu_s / seg_s,
        "hubert.rtf_wall": res["full"].wall_s / audio_s,
    }
    notes = {
        "hubert.rtf_per_core": (f"HubertConfig() random weights, 12 layers, {len(waves)} speechocean cuts "
                                f"({audio_s:.0f} s), fp32, 1 thread; floor ~0.16, goal <= 0.24"),
        "hubert.rtf_per_core_l6": "layer 6 only: forward pass stopped after layer 6",
        "hubert.rtf_per_core_b8": f"batch of 8 equal-length 4 s segments ({seg_s:.0f} s) in one pass",
        "hubert.rtf_per_core_b1_4s": "the same 8 segments one by one",
        "hubert.rtf_wall": f"wall clock on the shared machine (peak RSS {peak_rss_mb():.0f} MiB)",
    }
    record(figures, notes)


if __name__ == "__main__":
    main()
