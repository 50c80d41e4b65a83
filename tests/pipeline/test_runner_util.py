"""Helpers shared by the runner tests: a tiny generated corpus, a recipe, output snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from speechtok.pipeline.recipe import Recipe, recipe_from_dict


def make_corpus(root: Path, n: int = 10, seed: int = 0) -> Path:
    """`n` wav files (16 kHz, 0.5-1.4 s of tones + noise) with `.txt` sidecars."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        num = int(16000 * (0.5 + 0.1 * (i % 10)))
        t = np.arange(num) / 16000
        x = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * np.sin(2 * np.pi * 3 * t)
        x = x + 0.02 * rng.standard_normal(num)
        sf.write(root / f"utt{i:03d}.wav", x.astype(np.float32), 16000, subtype="PCM_16")
        (root / f"utt{i:03d}.txt").write_text(f"utterance number {i}\n")
    return root


def small_recipe(corpus: Path, **sets: Any) -> Recipe:
    """ingest -> fbank (40 bins) -> k-means units (k=4), 3 cuts per shard."""
    raw = {
        "vars": {"corpus": str(corpus), "k": 4},
        "ingest": {"source": "${corpus}", "sample_rate": 16000},
        "shards": {"cuts_per_shard": 3},
        "stages": [
            {"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
            {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
             "config": {"k": "${k}", "iterations": 4, "frame_budget": 3000}},
        ],
    }
    return recipe_from_dict(raw, sets=sets)


def snapshot(out: Path) -> dict[str, str]:
    """sha256 of every shard file and of index.json (what must be byte-identical)."""
    files = sorted((out / "shards").glob("*.arrow")) + [out / "index.json"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def leftovers(out: Path) -> list[str]:
    """Temporary files a finished run must not leave behind."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if ".tmp" in p.name or p.name.endswith(".partial"))
