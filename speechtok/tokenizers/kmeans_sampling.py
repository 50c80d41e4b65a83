"""Frame sources for k-means and uniform frame sampling under a budget, without concatenation.

A `FrameSource` is anything that yields 2-D arrays of frames `(n_i, D)` (float16 or float32),
one per cut or per chunk, and knows its total frame count before it is iterated. The sampler
makes two passes: the first asks for the total count `N`, then chooses `budget` frame indices
uniformly without replacement (deterministic by seed), and the second pass copies only those
rows into a preallocated `(budget, D)` float32 array. Peak memory is that array plus one source
array, whatever the corpus size.

Sources here: `ArrayFrameSource` (in-memory list of arrays), `NpyFrameSource` (`.npy` files
read in chunks with plain file reads, so that the process never maps a whole file), and
`ShardFrameSource` (a features group of an output directory, via
`speechtok.shards.reader.ShardDataset`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.shards.reader import ShardDataset


@runtime_checkable
class FrameSource(Protocol):
    """Frames of a corpus, iterated as arrays `(n_i, D)` float16/float32."""

    def total_frames(self) -> int:
        """Total number of frames over all arrays (cheap: no payload read where possible)."""
        ...

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yields arrays `(n_i, D)`, float16 or float32, in a fixed order."""
        ...

    def fingerprint(self) -> str | None:
        """An identifier of the features (e.g. the upstream stage fingerprint), or None."""
        ...


class ArrayFrameSource:
    """A `FrameSource` over in-memory arrays `(n_i, D)` (e.g. one per cut)."""

    def __init__(self, arrays: Sequence[np.ndarray], fingerprint: str | None = None) -> None:
        for i, a in enumerate(arrays):
            if a.ndim != 2:
                raise InputError(f"array {i}", f"frames must be 2-D (n, D), but have shape {a.shape}")
        self._arrays = arrays
        self._fingerprint = fingerprint

    def total_frames(self) -> int:
        return int(sum(a.shape[0] for a in self._arrays))

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._arrays)

    def fingerprint(self) -> str | None:
        return self._fingerprint


class NpyFrameSource:
    """A `FrameSource` over `.npy` files of shape `(n_i, D)`, read in chunks of `chunk_frames`.

    Reads with `readinto` into a reused buffer rather than `np.load(mmap_mode="r")`: pages of a
    memory map that the sampler touches count toward the process's resident size, which would
    make memory grow with the corpus.
    """

    def __init__(
        self, paths: Sequence[str | Path], *, chunk_frames: int = 16384, fingerprint: str | None = None
    ) -> None:
        if chunk_frames < 1:
            raise ConfigError("chunk_frames", chunk_frames, "must be >= 1")
        self.paths = [Path(p) for p in paths]
        self.chunk_frames = chunk_frames
        self._fingerprint = fingerprint
        self._headers = [_npy_header(p) for p in self.paths]

    def total_frames(self) -> int:
        return int(sum(shape[0] for shape, _, _ in self._headers))

    def __iter__(self) -> Iterator[np.ndarray]:
        for path, (shape, dtype, offset) in zip(self.paths, self._headers, strict=True):
            n, d = shape
            buf = np.empty((min(self.chunk_frames, max(n, 1)), d), dtype=dtype)
            with open(path, "rb") as f:
                f.seek(offset)
                done = 0
                while done < n:
                    m = min(self.chunk_frames, n - done)
                    view = buf[:m]
                    got = f.readinto(view.data.cast("B"))
                    if got != view.nbytes:
                        raise InputError(str(path), f"truncated: expected {n} frames, read {done}")
                    yield view
                    done += m

    def fingerprint(self) -> str | None:
        return self._fingerprint


def _npy_header(path: Path) -> tuple[tuple[int, int], np.dtype, int]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if len(shape) != 2 or fortran or dtype not in (np.float16, np.float32):
        raise InputError(
            str(path), f"expected a C-order (n, D) float16/float32 array, got {shape} {dtype}"
        )
    return (int(shape[0]), int(shape[1])), np.dtype(dtype), offset


class ShardFrameSource:
    """A `FrameSource` over a features group (`feats.NAME`) of an output directory.

    Uses `speechtok.shards.reader.ShardDataset`: frame counts come from `lengths(group)` without
    reading payloads; iteration yields each row's `(T, D)` features.
    """

    def __init__(self, out_dir: str | Path, group: str) -> None:
        self.group = group
        self._ds = ShardDataset(out_dir, groups=(group,))

    def total_frames(self) -> int:
        return int(np.asarray(self._ds.lengths(self.group)).sum())

    def __iter__(self) -> Iterator[np.ndarray]:
        for row in self._ds:
            feats = np.asarray(row[self.group])  # the group's primary column: (T, D)
            if feats.size:  # rows of quarantined cuts have no frames
                yield feats

    def fingerprint(self) -> str | None:
        return str(self._ds.meta(self.group).fingerprint)


@dataclass(frozen=True, kw_only=True)
class FrameSample:
    """Frames sampled from a source, in corpus order.

    Attributes:
        frames: `(n, D)` float32, n = min(budget, total).
        total_frames: frames in the whole source.
        sha256: hash of `frames` (identifies the sample for checkpoints).
    """

    frames: np.ndarray
    total_frames: int
    sha256: str


def choose_indices(total: int, budget: int, seed: int) -> np.ndarray:
    """Sorted frame indices, `budget` of `total` uniformly without replacement (int64).

    Uses `Generator.choice(replace=False)`, which needs O(budget) memory, not O(total).
    """
    if budget >= total:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A3F]))
    idx = rng.choice(total, size=budget, replace=False, shuffle=False).astype(np.int64)
    idx.sort()
    return idx


def sample_frames(source: FrameSource, budget: int, seed: int) -> FrameSample:
    """Samples up to `budget` frames uniformly over `source`, deterministically by `seed`.

    Two passes over the source; never holds more than the `(budget, D)` float32 output and one
    source array. Raises `InputError` when the source is empty or arrays disagree on `D`.
    """
    if budget < 1:
        raise ConfigError("frame_budget", budget, "must be >= 1")
    total = int(source.total_frames())
    if total < 1:
        raise InputError("frame source", "has no frames; check that the features group is not empty")
    idx = choose_indices(total, budget, seed)
    out: np.ndarray | None = None
    offset = filled = 0
    for arr in source:
        if arr.ndim != 2:
            raise InputError("frame source", f"arrays must be (n, D), but one has shape {arr.shape}")
        n = arr.shape[0]
        if out is None:
            out = np.empty((len(idx), arr.shape[1]), dtype=np.float32)  # (budget, D)
        elif arr.shape[1] != out.shape[1]:
            raise InputError(
                "frame source", f"arrays disagree on D: {arr.shape[1]} vs {out.shape[1]}"
            )
        lo, hi = np.searchsorted(idx, [offset, offset + n])
        if hi > lo:
            out[filled : filled + hi - lo] = arr[idx[lo:hi] - offset]
            filled += int(hi - lo)
        offset += n
    if out is None or offset != total or filled != len(idx):
        raise InputError(
            "frame source", f"total_frames() said {total}, but iteration gave {offset} frames"
        )
    if not np.isfinite(out).all():
        raise InputError("frame source", "sampled frames contain NaN or Inf; fix the features")
    return FrameSample(frames=out, total_frames=total, sha256=hashlib.sha256(out.data.cast("B")).hexdigest())
