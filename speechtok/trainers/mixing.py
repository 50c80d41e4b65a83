"""Weighted mixing of several corpora in one training run (``data.sources`` in a recipe).

    data:
      sources:
        - {shards: A, weight: 0.7}
        - {shards: B, weight: 0.3, repeat: true}

Every source keeps the trainers' length bucketing on its own (`plan_batches` over its rows,
seeded per source), so a batch holds rows of one source and pads exactly as a single-corpus
batch would. Which source gives the next batch is a smooth weighted round robin: each active
source earns its weight in credit per batch, the richest one is chosen and pays the active
total. Over any window of W batches a source's share of batches differs from its normalised
weight by less than (number of sources) / W while every source is active, e.g. < 0.2 points
over 1,000 batches with two sources.

A source that finishes its epoch starts its next one when ``repeat: true`` (a small corpus
cycles under a large one); otherwise it stops and the others share its place by weight (the window
bound above then holds for the active ones). When every source has stopped, the mix's epoch ends
and all sources start again (never, while one of them repeats). The whole position
(`MixSchedule.state`: per source its epoch, batches done, credit and whether it is active) is
JSON and restores the exact batch sequence mid-epoch (`MixLoader.state_dict()`).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.data import BatchingConfig, ConcatItems, plan_batches

#: Seed offset between sources (their batch plans must not coincide).
_SOURCE_SEED_STRIDE = 7919


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    """One corpus of a mix.

    Attributes:
        shards: its shard output directory.
        weight: its share of batches (normalised over the sources), > 0.
        repeat: start its next epoch when it runs out instead of stopping.
        vocab: a vocabulary file (``vocab_spec.json``) the sources share; sources whose token
            groups come from different models are refused unless all of them name vocabulary
            files with the same checksum.
    """

    shards: str
    weight: float = 1.0
    repeat: bool = False
    vocab: str | None = None

    def validate(self, where: str) -> None:
        if not self.shards:
            raise ConfigError(f"{where}.shards", self.shards, "must be a shard directory")
        if not self.weight > 0:
            raise ConfigError(f"{where}.weight", self.weight, "must be > 0")


def parse_sources(raw: Sequence[Mapping[str, Any]] | None, field: str = "data.sources") -> tuple[SourceSpec, ...]:
    """`SourceSpec`s from a recipe's list of mappings (unknown keys are errors)."""
    out = []
    known = {"shards", "weight", "repeat", "vocab"}
    for i, item in enumerate(raw or ()):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(where, item, "must be a mapping like {shards: DIR, weight: 0.5}")
        unknown = sorted(set(item) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", item[unknown[0]],
                              f"is not a source field; known: {sorted(known)}")
        spec = SourceSpec(shards=str(item.get("shards") or ""), weight=float(item.get("weight", 1.0)),
                          repeat=bool(item.get("repeat", False)),
                          vocab=None if item.get("vocab") is None else str(item["vocab"]))
        spec.validate(where)
        out.append(spec)
    return tuple(out)


def shared_vocab_checksum(sources: Sequence[SourceSpec]) -> str | None:
    """The checksum of the vocabulary file every source names, or None when they do not all name
    one with the same checksum."""

    if not sources or any(s.vocab is None for s in sources):
        return None
    sums = {VocabSpec.load(Path(str(s.vocab))).checksum() for s in sources}
    return sums.pop() if len(sums) == 1 else None


class MixSchedule:
    """The batch sequence of a mix: `next() -> (source, indices into that source)` (pure numpy).

    Args:
        lengths: per source, `(N_s,)` int lengths of its items.
        weights: per source, > 0 (normalised here).
        repeat: per source, whether it cycles (see the module docstring).
        cfg: batching, applied to every source (seed offset per source).
    """

    def __init__(self, lengths: Sequence[np.ndarray], weights: Sequence[float], repeat: Sequence[bool],
                 cfg: BatchingConfig) -> None:
        if not (len(lengths) == len(weights) == len(repeat)) or not lengths:
            raise ConfigError("data.sources", len(lengths), "needs one weight and repeat flag per source, >= 1 source")
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        self.repeat = [bool(r) for r in repeat]
        self.lengths = [np.asarray(x, dtype=np.int64) for x in lengths]
        self.cfgs = [replace(cfg, seed=cfg.seed + _SOURCE_SEED_STRIDE * s) for s in range(len(lengths))]
        for s, x in enumerate(self.lengths):
            if not plan_batches(x, self.cfgs[s], 0):
                raise InputError(f"data.sources[{s}]", f"gives no batch ({x.size} items, max_length={cfg.max_length})")
        self.state: dict[str, Any] = self.initial_state(0)
        self._plans: dict[int, tuple[int, list[np.ndarray]]] = {}

    def initial_state(self, epoch: int) -> dict[str, Any]:
        prev = getattr(self, "state", None)
        sources = [{"epoch": (prev["sources"][s]["epoch"] + 1) if prev else 0, "batch": 0, "active": True,
                    "credit": 0.0} for s in range(len(self.lengths))]
        return {"epoch": epoch, "batch": 0, "sources": sources}

    def _plan(self, s: int) -> list[np.ndarray]:
        e = int(self.state["sources"][s]["epoch"])
        cached = self._plans.get(s)
        if cached is None or cached[0] != e:
            cached = (e, plan_batches(self.lengths[s], self.cfgs[s], e))
            self._plans[s] = cached
        return cached[1]

    def load_state(self, state: Mapping[str, Any]) -> None:
        if len(state.get("sources", ())) != len(self.lengths):
            raise InputError("checkpoint data state",
                             f"has {len(state.get('sources', ()))} sources, the mix {len(self.lengths)}")
        self.state = copy.deepcopy(dict(state))

    def next(self) -> tuple[int, np.ndarray]:
        """The next batch: (source index, int64 indices into that source's items)."""
        while True:
            srcs = self.state["sources"]
            active = [s for s in range(len(srcs)) if srcs[s]["active"]]
            if not active:  # every source stopped: the mix's epoch ends
                self.state = self.initial_state(int(self.state["epoch"]) + 1)
                continue
            wsum = sum(self.weights[s] for s in active)
            for s in active:
                srcs[s]["credit"] += self.weights[s]
            pick = max(active, key=lambda s: (srcs[s]["credit"], -s))
            srcs[pick]["credit"] -= wsum
            plan = self._plan(pick)
            st = srcs[pick]
            if st["batch"] >= len(plan):  # this source's epoch is over
                if self.repeat[pick]:
                    st["epoch"], st["batch"] = st["epoch"] + 1, 0
                    plan = self._plan(pick)
                else:
                    st["active"], st["credit"] = False, 0.0
                    continue
            batch = plan[st["batch"]]
            st["batch"] += 1
            self.state["batch"] += 1
            return pick, batch


class MixLoader:
    """Infinite, resumable iterator of collated batches from several sources (module docstring).

    Same interface as `speechtok.trainers.data.BatchLoader` (`next`, `state_dict`,
    `load_state_dict`); `last_source` is the source of the batch last returned.
    """

    def __init__(self, items: Sequence[Any], lengths: Sequence[np.ndarray], collate: Callable[[list[Any]], Any],
                 cfg: BatchingConfig, weights: Sequence[float], repeat: Sequence[bool]) -> None:
        cfg.validate()
        for s, (it, ln) in enumerate(zip(items, lengths, strict=True)):
            if np.asarray(ln).shape != (len(it),):
                raise InputError(f"data.sources[{s}] lengths",
                                 f"shape {np.asarray(ln).shape} does not match {len(it)} items")
        self.schedule = MixSchedule(lengths, weights, repeat, cfg)
        self.items, self.collate, self.cfg = ConcatItems(items), collate, cfg
        self._state = copy.deepcopy(self.schedule.state)
        self._iter: Iterator[Any] | None = None
        self._pending: deque[tuple[int, dict[str, Any]]] = deque()
        self.last_source = -1

    @property
    def epoch(self) -> int:
        return int(self._state["epoch"])

    @property
    def batch(self) -> int:
        return int(self._state["batch"])

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch returned (JSON)."""
        return copy.deepcopy(self._state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state(state)
        self._state = copy.deepcopy(dict(state))
        self._iter = None

    def _batches(self) -> Iterator[list[int]]:
        while True:
            s, idx = self.schedule.next()
            self._pending.append((s, copy.deepcopy(self.schedule.state)))
            yield (idx + int(self.items.offsets[s])).tolist()

    def _start(self) -> Iterator[Any]:
        self.schedule.load_state(self._state)
        self._pending.clear()
        workers = self.cfg.num_workers
        loader = DataLoader(self.items, batch_sampler=self._batches(),  # type: ignore[arg-type]
                            collate_fn=self.collate, num_workers=workers,
                            prefetch_factor=self.cfg.prefetch if workers else None,
                            generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    def __iter__(self) -> MixLoader:
        return self

    def __next__(self) -> Any:
        if self._iter is None:
            self._iter = self._start()
        batch = next(self._iter)
        self.last_source, self._state = self._pending.popleft()
        return batch


def mix_stats(schedule: MixSchedule, n_batches: int, window: int = 1000) -> dict[str, Any]:
    """Runs `schedule` for `n_batches` and measures it: per-source realised share, the largest
    |share - weight| over every window of `window` consecutive batches (sliding), and the
    padding fraction (padded positions / all positions, `B * max_len` per batch)."""
    k = len(schedule.weights)
    picks = np.empty(n_batches, np.int64)
    real = padded = 0
    for b in range(n_batches):
        s, idx = schedule.next()
        picks[b] = s
        ln = schedule.lengths[s][idx]
        real += int(ln.sum())
        padded += int(ln.max()) * len(idx)
    onehot = np.eye(k, dtype=np.int64)[picks]  # (n, k)
    csum = np.vstack([np.zeros((1, k), np.int64), np.cumsum(onehot, axis=0)])
    w = min(window, n_batches)
    shares = (csum[w:] - csum[:-w]) / w  # (n - w + 1, k): every window
    err = np.abs(shares - np.asarray(schedule.weights)[None, :])
    return {"share": (csum[-1] / n_batches).tolist(), "max_share_error": float(err.max()),
            "padding_frac": 1.0 - real / max(padded, 1), "batches": n_batches, "window": w}
