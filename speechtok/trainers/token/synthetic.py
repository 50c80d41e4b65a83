"""A learnable synthetic corpus written as real shards (for tests, demos and benchmarks).

Each letter is a fixed run of units, words are separated by a silence unit, and word alignments
are exact, so a token LM can learn ASR on it in seconds and interleaving can be checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechtok.shards.schema import GroupMeta
from speechtok.shards.writer import commit_group_shard

WORDS = ["CAT", "DOG", "BEAR", "ZERO", "ONE", "TWO", "THREE", "HELLO", "WORLD", "IT", "WE", "CALL"]
CUTS = GroupMeta(group="cuts", kind="cuts", stage="ingest", stage_version="1", config={"source": "synthetic"},
                 fingerprint="syn-cuts")


def word_frames(word: str, k: int = 32) -> list[int]:
    """The frame-level units of `word` (without the silences around it)."""
    out: list[int] = []
    for c in word:
        base = (ord(c) - ord("A")) * 2
        out += [base % (k - 1)] * 2 + [(base + 1) % (k - 1)] * 2
    return out


def write_synthetic_shards(out: Path, *, num_cuts: int = 60, k: int = 32, frame_rate: float = 50.0, seed: int = 0,
                           feats_dim: int = 0) -> Path:
    """Cuts of 2-4 words; letter c -> units (2c, 2c+1) % k, 2 frames each; words separated by 3 frames
    of unit k-1 (silence). Word alignments are exact. With `feats_dim`, also `feats.syn` (one-hot-ish
    features of the unit plus noise)."""
    rng = np.random.default_rng(seed)
    units_meta = GroupMeta(group=f"units.km{k}", kind="units", stage="kmeans_units", stage_version="1",
                           config={"k": k}, fingerprint="syn-units", frame_rate=frame_rate, vocab_size=k)
    feats_meta = GroupMeta(group="feats.syn", kind="feats", stage="fbank", stage_version="1", config={},
                           fingerprint="syn-feats", frame_rate=frame_rate, dim=feats_dim, dtype="float32")
    proj = rng.normal(size=(k, max(feats_dim, 1))).astype(np.float32)
    cuts, units, feats = [], [], []
    for i in range(num_cuts):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 5))))
        seq: list[int] = [k - 1] * 3
        align = []
        for w in words:
            start = len(seq) / frame_rate
            seq += word_frames(str(w), k)
            align.append({"word": str(w), "start": start, "duration": len(w) * 4 / frame_rate})
            seq += [k - 1] * 3
        u = np.array(seq, dtype=np.uint16)
        cid = f"syn-{i:04d}"
        cuts.append({"id": cid, "recording_id": cid, "start": 0.0, "duration": len(seq) / frame_rate,
                     "sampling_rate": 16000, "text": " ".join(words), "speaker": f"spk{i % 10}", "language": "en",
                     "alignment": align})
        units.append({"id": cid, "units": u})
        if feats_dim:
            feats.append({"id": cid, "feats": proj[u] + 0.1 * rng.normal(size=(len(u), feats_dim)).astype(np.float32)})
    per = 25
    for s, lo in enumerate(range(0, num_cuts, per)):
        commit_group_shard(out, s, CUTS, cuts[lo:lo + per])
        commit_group_shard(out, s, units_meta, units[lo:lo + per])
        if feats_dim:
            commit_group_shard(out, s, feats_meta, feats[lo:lo + per])
    return out
