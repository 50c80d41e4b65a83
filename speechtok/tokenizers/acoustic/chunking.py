"""Long audio in chunks: overlap-and-trim at frame boundaries.

A cut of `S` samples has ``T = ceil(S / hop)`` frames. It is split into cores of `chunk_frames`
frames; each chunk is encoded with up to `context_frames` frames of *real* audio on each side
(less at the ends of the cut, where the cut's own edge is), and only the core's frames are kept:

    samples  |--ctx--|=========core k=========|--ctx--|
    codes            [keep_start, keep_stop)            (frames of the chunk's own codes)

Edge behaviour, stated:
- Chunk starts are multiples of `hop`, so chunk frame `j` is global frame ``start/hop + j`` and
  the kept cores tile ``[0, T)`` exactly: the output has the same `T` as unchunked encoding.
- A kept frame differs from the unchunked code only if the encoder's receptive field around it
  reaches past the chunk's context into the zero/reflect padding of the chunk edge. With
  ``context_frames * hop`` >= the encoder's one-sided receptive field, convolutional encoders
  match exactly; encoders with a recurrent layer (EnCodec's LSTM) have unbounded memory, so a
  few frames after each chunk start can still flip (the tests measure the agreed fraction).
- Cuts with ``T <= chunk_frames`` are not chunked at all.
- All middle chunks have the same length ``(chunk_frames + 2 * context_frames) * hop``, and all
  first chunks ``(chunk_frames + context_frames) * hop``: exact-length bucketing batches them
  across cuts.

The same plan in the frame domain (``hop=1``) chunks decoding: a decoded chunk's audio is trimmed
to ``[keep_start * hop, keep_stop * hop)`` samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speechtok.errors import ConfigError, check_at_least


@dataclass(frozen=True)
class Chunk:
    """One chunk of a cut.

    Attributes:
        start: first sample (or frame, for a frame-domain plan) of the chunk; multiple of hop.
        stop: one past the last sample of the chunk.
        keep_start: first of the chunk's own output frames to keep.
        keep_stop: one past the last kept frame.
    """

    start: int
    stop: int
    keep_start: int
    keep_stop: int


def plan_chunks(num_samples: int, hop: int, chunk_frames: int, context_frames: int) -> list[Chunk]:
    """Splits ``[0, num_samples)`` into chunks whose kept frames tile ``[0, ceil(S/hop))``.

    Args:
        num_samples: length of the cut in samples (frames, with ``hop=1``).
        hop: samples per frame.
        chunk_frames: frames kept per chunk (the core); >= 1.
        context_frames: frames of extra audio on each side; >= 0.

    Returns:
        Chunks in time order. A single chunk covering everything when ``T <= chunk_frames``.
    """
    check_at_least(1, num_samples=num_samples, hop=hop, chunk_frames=chunk_frames)
    check_at_least(0, context_frames=context_frames)
    total = -(-num_samples // hop)
    if total <= chunk_frames:
        return [Chunk(0, num_samples, 0, total)]
    chunks = []
    for f0 in range(0, total, chunk_frames):
        f1 = min(f0 + chunk_frames, total)
        first = max(0, f0 - context_frames)
        stop = min(num_samples, (f1 + context_frames) * hop)
        chunks.append(Chunk(first * hop, stop, f0 - first, f1 - first))
    return chunks


def stitch(outputs: Sequence[np.ndarray], chunks: Sequence[Chunk], scale: int = 1) -> np.ndarray:
    """Concatenates the kept part of each chunk's output along axis 0.

    Args:
        outputs: per chunk, an array whose axis 0 is frames (codes, ``scale=1``) or samples of
            decoded audio (``scale=hop``).
        chunks: the plan the outputs were computed from.
        scale: output rows per plan unit.

    Returns:
        The stitched array, ``sum(keep_stop - keep_start) * scale`` rows.
    """
    if len(outputs) != len(chunks):
        raise ConfigError("outputs", len(outputs), f"must have one entry per chunk ({len(chunks)})")
    parts = []
    for out, c in zip(outputs, chunks, strict=True):
        lo, hi = c.keep_start * scale, c.keep_stop * scale
        if out.shape[0] < hi:
            raise ConfigError("outputs", out.shape, f"must have >= {hi} rows for chunk {c}")
        parts.append(out[lo:hi])
    return np.concatenate(parts, axis=0)
