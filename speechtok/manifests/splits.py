"""Deterministic train/dev/test splits and shard partitions.

Splits hash a key (the speaker id, or the recording id when the speaker is unknown) with
BLAKE2b, so the same key lands in the same split on every machine, Python version and run,
whatever the order or size of the corpus; adding items never moves existing ones. Splitting by
speaker keeps every speaker in exactly one split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from lhotse import CutSet
from lhotse.cut import Cut

from speechtok.errors import ConfigError, check_at_least

SPLITS: tuple[str, str, str] = ("train", "dev", "test")


def _unit(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from `key` and `seed` (stable across runs and platforms)."""
    h = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def check_ratios(ratios: Sequence[float]) -> None:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError("ratios", tuple(ratios), "must be three non-negative numbers summing to 1")


def split_of(key: str, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    """``"train"``, ``"dev"`` or ``"test"`` for `key`, by a hash of (`seed`, `key`)."""
    check_ratios(ratios)
    u = _unit(key, seed)
    edge = 0.0
    for name, r in zip(SPLITS, ratios, strict=True):
        edge += r
        if r > 0 and u < edge:
            return name
    # float rounding at the top edge: the last split with a non-zero share
    return [n for n, r in zip(SPLITS, ratios, strict=True) if r > 0][-1]


def split_key(cut: Cut) -> str:
    """The key a cut is split by: its first supervision's speaker, else its recording id."""
    for sup in cut.supervisions:
        if sup.speaker:
            return str(sup.speaker)
    if cut.has_recording:
        return str(cut.recording_id)
    return str(cut.supervisions[0].recording_id) if cut.supervisions else str(cut.id)


def shard_of(key: str, num_shards: int, seed: int = 0) -> int:
    """Shard index in [0, num_shards) for `key`, by hash (for streaming assignment)."""
    check_at_least(1, num_shards=num_shards)
    return int(_unit(key, seed + 0x5EED) * num_shards)


def partition(cut_ids: Iterable[str], num_shards: int) -> list[list[str]]:
    """Splits ids into `num_shards` contiguous, order-preserving parts of near-equal size.

    Sizes differ by at most one and the first parts are the larger; the concatenation of the
    parts is the input. Deterministic: depends only on the ids' order and `num_shards`.
    """
    check_at_least(1, num_shards=num_shards)
    ids = list(cut_ids)
    q, r = divmod(len(ids), num_shards)
    out: list[list[str]] = []
    pos = 0
    for i in range(num_shards):
        n = q + (1 if i < r else 0)
        out.append(ids[pos : pos + n])
        pos += n
    return out


def write_splits(
    cuts_path: str | Path,
    out_dir: str | Path,
    *,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, Path]:
    """Streams a cuts manifest into ``cuts.{train,dev,test}.jsonl.gz`` by `split_key`.

    Returns:
        split name -> written path (every split file is written, possibly empty).
    """
    check_ratios(ratios)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {s: out / f"cuts.{s}.jsonl.gz" for s in SPLITS}
    writers = {s: CutSet.open_writer(p) for s, p in paths.items()}
    try:
        for cut in CutSet.from_jsonl_lazy(cuts_path):
            writers[split_of(split_key(cut), ratios, seed)].write(cut)
    finally:
        for w in writers.values():
            w.close()
    return paths
