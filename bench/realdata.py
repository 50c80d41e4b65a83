"""Real speech features for benchmarks: filterbanks of speechocean762-train80 from `../shared`.

Computed once with speechtok's `FbankExtractor` (80 mel bins, 10 ms shift) and cached as a
`.npy` under `runs/bench-cache/` (written atomically); the cache is keyed by the file list and
the fbank config, so a change to either recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.common import SHARED

CORPUS = SHARED / "data" / "speechocean762-train80"
CACHE = Path(__file__).resolve().parents[1] / "runs" / "bench-cache"


def have_corpus() -> bool:
    """Whether `../shared/data/speechocean762-train80` is there."""
    return (CORPUS / "wav.scp").is_file()


def wav_paths() -> list[tuple[str, Path]]:
    """`(utterance id, FLAC path)` of every line of the corpus's `wav.scp`, in file order."""
    out = []
    for line in (CORPUS / "wav.scp").read_text().splitlines():
        if line.strip():
            uid, rel = line.split(maxsplit=1)
            out.append((uid, CORPUS / rel.strip()))
    return out


def speechocean_fbank() -> np.ndarray:
    """`(n_frames, 80)` float32 filterbanks of every speechocean762-train80 utterance, stacked."""
    import soundfile as sf

    from speechtok.features.fbank import FbankConfig, FbankExtractor

    cfg = FbankConfig()
    paths = wav_paths()
    key = hashlib.sha256(json.dumps([[u, str(p)] for u, p in paths] + [cfg.to_dict()],
                                    sort_keys=True).encode()).hexdigest()[:12]
    cached = CACHE / f"so762_fbank80_{key}.npy"
    if cached.exists():
        return np.load(cached)
    ext = FbankExtractor(cfg)
    feats: list[np.ndarray] = []
    for s in range(0, len(paths), 100):
        waves = [sf.read(p, dtype="float32")[0] for _, p in paths[s : s + 100]]
        feats += ext.extract_batch(waves, 16000)
    x = np.ascontiguousarray(np.concatenate(feats), dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE, suffix=".npy.tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, x)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, cached)
    return x
