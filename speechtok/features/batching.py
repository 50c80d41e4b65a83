"""Batching helpers for model features: exact-length buckets, length-sorted padded batches, and
chunking of long signals with overlap.

Batched inference must give what one-by-one inference gives. A model whose outputs change with
padding (group-norm feature encoders: HuBERT-base, wav2vec2-base) is batched only over signals of
exactly the same length; a model that masks padding correctly is batched over signals sorted by
length (little padding). Both are bounded by a budget of padded samples per batch.

Chunking (`chunk_spans`): a signal longer than ``chunk`` samples is cut into cores of ``chunk``
samples; each core is extended by ``overlap`` samples of context on each side (clipped at the
signal's ends) and run through the model alone; of each chunk's output, only the frames whose
start lies in its core are kept. All offsets are multiples of the model's hop, so kept frames
fall on the unchunked frame grid and their number equals the unchunked count. Edge behaviour:
a frame near a core boundary sees ``overlap`` samples of context on the far side instead of the
whole recording (attention is global in these models; group norms normalise over the chunk),
so it differs slightly from the unchunked result; frames of a signal no longer than ``chunk``
are not affected at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from speechtok.errors import ConfigError, check_at_least


def exact_length_buckets(lengths: Sequence[int], max_batch_samples: int,
                         max_batch_size: int | None = None) -> list[list[int]]:
    """Groups indices of equal `lengths` into batches of at most `max_batch_samples` samples
    and at most `max_batch_size` signals (None: no bound).

    Returns:
        Batches of indices into `lengths`; every index appears once; inside a batch all lengths
        are equal. Longer signals come first (so that memory peaks early). A signal longer than
        the budget gets a batch of its own.
    """
    check_at_least(1, max_batch_samples=max_batch_samples, max_batch_size=max_batch_size)
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths):
        by_len[int(n)].append(i)
    batches: list[list[int]] = []
    for n in sorted(by_len, reverse=True):
        per = max(1, max_batch_samples // max(n, 1))
        per = per if max_batch_size is None else min(per, max_batch_size)
        idx = by_len[n]
        batches.extend(idx[k : k + per] for k in range(0, len(idx), per))
    return batches


def padded_buckets(lengths: Sequence[int], max_batch_samples: int) -> list[list[int]]:
    """Sorts indices by length (longest first) and cuts batches whose padded size
    ``len(batch) * max(length)`` stays within `max_batch_samples` (at least one signal each)."""
    check_at_least(1, max_batch_samples=max_batch_samples)
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = int(lengths[cur[0]]) if cur else int(lengths[i])
        if cur and (len(cur) + 1) * longest > max_batch_samples:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk of a long signal, in samples and in output frames.

    The model runs on samples ``[start, stop)``; of its output, frames
    ``[keep_from, keep_to)`` (relative to the chunk) are kept, and they are the signal's frames
    ``[frame_offset, frame_offset + keep_to - keep_from)``.
    """

    start: int
    stop: int
    keep_from: int
    keep_to: int
    frame_offset: int


def chunk_spans(
    num_samples: int, num_frames: int, *, chunk: int, overlap: int, hop: int
) -> list[ChunkSpan]:
    """Chunks of a signal of `num_samples` samples whose unchunked output has `num_frames` frames.

    Args:
        num_samples: signal length S.
        num_frames: frames of the unchunked output (e.g. ``floor((S - 400) / 320) + 1``).
        chunk: core length in samples; rounded down to a multiple of `hop`.
        overlap: context on each side in samples; rounded up to a multiple of `hop`. It must
            cover the model's receptive field beyond one hop (400 samples for wav2vec2-style
            encoders, so >= 80 samples) for every frame of a core to exist in its chunk.
        hop: the model's frame hop in samples (320 for wav2vec2-style encoders at 16 kHz).

    Returns:
        The spans, in order; a single span ``[0, S)`` when ``S <= chunk``.
    """
    check_at_least(1, hop=hop)
    chunk = (chunk // hop) * hop
    if chunk < hop:
        raise ConfigError("chunk", chunk, f"must be >= one hop ({hop} samples)")
    overlap = -(-overlap // hop) * hop
    if num_samples <= chunk:
        return [ChunkSpan(0, num_samples, 0, num_frames, 0)]
    spans: list[ChunkSpan] = []
    frames_per_core = chunk // hop
    core = 0
    while core * frames_per_core < num_frames:
        f0 = core * frames_per_core
        f1 = min(f0 + frames_per_core, num_frames)
        start = max(0, f0 * hop - overlap)
        stop = num_samples if f1 == num_frames else min(num_samples, f1 * hop + overlap)
        keep_from = (f0 * hop - start) // hop
        spans.append(ChunkSpan(start, stop, keep_from, keep_from + f1 - f0, f0))
        core += 1
    return spans
