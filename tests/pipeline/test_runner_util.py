"""Helpers shared by the runner tests: a tiny generated corpus, a recipe, output snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from speechtok.manifests.tone_corpus import write_tone_corpus
from speechtok.pipeline.recipe import Recipe, recipe_from_dict


def make_corpus(root: Path, n: int = 10, seed: int = 0) -> Path:
    """`n` wav files (16 kHz, 0.5-1.4 s of tones + noise) with `.txt` sidecars."""
    return write_tone_corpus(root, n, seed=seed)


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


def listening_addresses(root_pid: int | None = None) -> dict[str, set[str]]:
    """Listening TCP addresses of a process and all its descendants (Ray's GCS, raylets,
    agents, workers): {ip: {"name:port", ...}}."""
    import os

    import psutil

    me = psutil.Process(root_pid or os.getpid())
    found: dict[str, set[str]] = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            # psutil >= 6 names it net_connections; 5.x connections
            getter = getattr(proc, "net_connections", None) or proc.connections
            conns = getter(kind="tcp")
            name = proc.name()
        except psutil.Error:  # it exited meanwhile
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                ip = c.laddr.ip.removeprefix("::ffff:")
                found.setdefault(ip, set()).add(f"{name}:{c.laddr.port}")
    return found
