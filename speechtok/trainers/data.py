"""Batches for every trainer: length bucketing, a token budget per batch, prefetch, resumable.

`BatchLoader(items, lengths, collate, cfg)` iterates collated batches forever (epoch after
epoch). The order of epoch e is a pure function of `(cfg.seed, e)`:

    indices (shuffled by seed+epoch) -> pools of `pool_size` -> each pool sorted by length
    -> cut greedily into batches with `batch * max_len <= max_tokens` and `batch <= max_batch`
    -> batch order shuffled

so the position `{"epoch": e, "batch": i}` (batches consumed, `state_dict()`) is all a resumed
run needs to continue with exactly the batches it would have seen. Loading runs on a torch
`DataLoader` over the planned batches (`num_workers` processes, `prefetch` batches each; a
dedicated generator, so the loader never consumes the global torch RNG that dropout uses).

`items` is anything with `__len__` and `__getitem__` (a list of dicts, a
`speechtok.shards.reader.ShardDataset`, or several of them read as one: `ConcatItems`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from speechtok.errors import ConfigError, InputError


@dataclass(frozen=True, kw_only=True)
class BatchingConfig:
    """Batching and loading.

    Attributes:
        max_tokens: budget of padded length units (tokens or frames) per batch: `B * max_len`.
        max_batch: most items in a batch.
        pool_size: items sorted together by length (bigger: less padding, less randomness). The
            default 2048 keeps padding under 5% for a mix of corpora (`speechtok.trainers.mixing`,
            ``bench/bench_mix.py``); at 1024 a mix with a small source pads about 5%.
        shuffle: shuffle items and batches each epoch (seeded by `seed` and the epoch).
        max_length: items longer than this are skipped (counted in `BatchLoader.skipped`).
        num_workers: DataLoader worker processes (0 = load in the training process).
        prefetch: batches prepared ahead per worker (`prefetch_factor`).
    """

    max_tokens: int = 8192
    max_batch: int = 64
    pool_size: int = 2048
    shuffle: bool = True
    seed: int = 0
    max_length: int | None = None
    num_workers: int = 0
    prefetch: int = 2

    def validate(self) -> None:
        for name in ("max_tokens", "max_batch", "pool_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"batching.{name}", getattr(self, name), "must be >= 1")
        if self.num_workers < 0:
            raise ConfigError("batching.num_workers", self.num_workers, "must be >= 0")
        if self.prefetch < 1:
            raise ConfigError("batching.prefetch", self.prefetch, "must be >= 1")


def plan_batches(lengths: np.ndarray, cfg: BatchingConfig, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch: a list of int64 index arrays into `lengths` (`(N,)` int)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng([cfg.seed, epoch])
    order = np.arange(lengths.size)
    if cfg.max_length is not None:
        order = order[lengths <= cfg.max_length]
    if cfg.shuffle:
        order = rng.permutation(order)
    batches: list[np.ndarray] = []
    for p in range(0, order.size, cfg.pool_size):
        pool = order[p : p + cfg.pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        current: list[int] = []
        longest = 0
        for idx in pool:
            n = max(int(lengths[idx]), 1)
            if current and (max(longest, n) * (len(current) + 1) > cfg.max_tokens or len(current) >= cfg.max_batch):
                batches.append(np.array(current, dtype=np.int64))
                current, longest = [], 0
            current.append(int(idx))
            longest = max(longest, n)
        if current:
            batches.append(np.array(current, dtype=np.int64))
    if cfg.shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class _Items(Dataset):
    def __init__(self, items: Any) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[int(i)]


class ConcatItems(Dataset):
    """Several indexable datasets (`parts`) read as one: item `i` of part k is item
    ``offsets[k] + i`` here."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *[len(p) for p in self.parts]])  # (K + 1,) int

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, i: int) -> tuple[Any, int]:
        """The part holding item `i` and the item's index in it."""
        k = int(np.searchsorted(self.offsets, int(i), side="right")) - 1
        return self.parts[k], int(i) - int(self.offsets[k])

    def __getitem__(self, i: int) -> Any:
        part, j = self.locate(i)
        return part[j]


class BatchLoader:
    """Infinite, resumable iterator of collated batches (see the module docstring).

    Args:
        items: indexable dataset of items.
        lengths: `(N,)` length of each item in the unit of `max_tokens`.
        collate: list of items -> batch (e.g. padded tensors).
    """

    def __init__(self, items: Any, lengths: np.ndarray, collate: Callable[[list[Any]], Any],
                 cfg: BatchingConfig) -> None:
        cfg.validate()
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.shape != (len(items),):
            raise InputError("lengths", f"shape {self.lengths.shape} does not match {len(items)} items")
        self.items, self.collate, self.cfg = items, collate, cfg
        self.epoch, self.batch = 0, 0
        self._iter: Iterator[Any] | None = None
        if not plan_batches(self.lengths, cfg, 0):
            raise InputError("dataset", f"no batches: {len(items)} items, max_length={cfg.max_length}")

    @property
    def skipped(self) -> int:
        """Items dropped by `max_length` in every epoch."""
        if self.cfg.max_length is None:
            return 0
        return int((self.lengths > self.cfg.max_length).sum())

    def state_dict(self) -> dict[str, int]:
        """Position: the epoch and the number of its batches already returned."""
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iter = None

    def _start(self) -> Iterator[Any]:
        plan = plan_batches(self.lengths, self.cfg, self.epoch)[self.batch :]
        workers = self.cfg.num_workers
        loader = DataLoader(_Items(self.items), batch_sampler=[b.tolist() for b in plan], collate_fn=self.collate,
                            num_workers=workers, prefetch_factor=self.cfg.prefetch if workers else None,
                            persistent_workers=False, generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    def __iter__(self) -> BatchLoader:
        return self

    def __next__(self) -> Any:
        while True:
            if self._iter is None:
                self._iter = self._start()
            try:
                batch = next(self._iter)
            except StopIteration:
                self.epoch, self.batch, self._iter = self.epoch + 1, 0, None
                continue
            self.batch += 1
            return batch

    def epoch_batches(self) -> int:
        return len(plan_batches(self.lengths, self.cfg, self.epoch))


def report_skipped(shards: str, quarantined: int, no_speaker: int, no_text: int, kept: int, *,
                   no_frames: int = 0) -> None:
    """Prints how many rows a trainer leaves out and why (nothing is dropped silently);
    `no_frames`: rows whose input has 0 frames (a clip shorter than one feature window).

    Raises:
        InputError: no row is left.
    """
    if quarantined or no_speaker or no_text or no_frames:
        frames = f", {no_frames} with 0 input frames" if no_frames else ""
        print(f"speechtok train: {shards}: {kept} rows used; left out {quarantined} quarantined "
              f"(ShardDataset(include_quarantined=True) lists them), {no_speaker} without a speaker, "
              f"{no_text} without a target text{frames}", flush=True)
    if not kept:
        raise InputError(shards, "has no usable row (every row is quarantined or lacks a speaker, "
                         "target text or input frames); check quarantine.jsonl and the corpus labels")


def pad_1d(seqs: Sequence[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads `(L_i,)` int arrays -> `(B, max L)` int64 and `(B,)` int64 lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), pad, dtype=torch.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
    return out, lengths


def pad_2d(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads `(T_i, D)` float arrays -> `(B, max T, D)` float32 and `(B,)` int64 lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    d = int(np.asarray(seqs[0]).shape[1])
    out = torch.zeros(len(seqs), int(lengths.max()), d, dtype=torch.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.from_numpy(np.array(s, dtype=np.float32))  # copy: shard views are read-only
    return out, lengths
