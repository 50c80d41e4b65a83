"""The acoustic-tokenizer protocol, its info record and the checks every codec shares.

An acoustic tokenizer turns mono waveforms into residual-vector-quantised codes and back:

    encode_batch(waves: list[np.ndarray float32 (S,)], sr) -> list[np.ndarray uint16 (T, Q)]
    decode(codes: np.ndarray uint16 (T, Q), num_samples=None) -> np.ndarray float32 (S',)

`T` is the number of codec frames (`ceil(S / hop_length)` for every codec here), `Q` the number
of codebooks in use. Batched encoding returns exactly the codes of encoding each wave alone
(see `batching.py` for how).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.tokenizers.acoustic.batching import run_bucketed
from speechtok.tokenizers.acoustic.chunking import plan_chunks, stitch


@dataclass(frozen=True, kw_only=True)
class CodecInfo:
    """What a consumer of the codes needs to know (written to the shard metadata).

    Attributes:
        name: codec id, e.g. ``"encodec_24khz"``, ``"dac_16khz"``, ``"lyra_v2"``.
        sample_rate: waveform rate in Hz the codec reads and writes.
        hop_length: samples per codec frame.
        frame_rate: codec frames per second (``sample_rate / hop_length``).
        num_codebooks: `Q`, codebooks in use (columns of the code matrix).
        codebook_size: entries per codebook; codes are in ``[0, codebook_size)``.
    """

    name: str
    sample_rate: int
    hop_length: int
    frame_rate: float
    num_codebooks: int
    codebook_size: int

    @property
    def bits_per_frame(self) -> float:
        """Bits per frame: ``Q * log2(codebook_size)``."""
        return self.num_codebooks * math.log2(self.codebook_size)

    @property
    def bitrate(self) -> float:
        """Nominal bitrate in bits per second (no entropy coding)."""
        return self.frame_rate * self.bits_per_frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict including the derived bitrate."""
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "bitrate": self.bitrate,
        }


@runtime_checkable
class AcousticTokenizer(Protocol):
    """Protocol every codec wrapper follows (EnCodec, DAC, Lyra)."""

    @property
    def info(self) -> CodecInfo: ...

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """waves: float32 (S_i,) at `sr` == info.sample_rate -> uint16 (T_i, Q) each."""
        ...

    def decode(self, codes: np.ndarray, num_samples: int | None = None) -> np.ndarray:
        """uint16 (T, Q) -> float32 (S,), trimmed to `num_samples` when given."""
        ...

    def checksum(self) -> str:
        """sha256 hex of the weights (for stage fingerprints)."""
        ...


class CodecBase:
    """What the codec wrappers share: `info`, `checksum`, the micro-batch size and the chunk plan.

    A subclass sets ``config``, ``device`` (a torch.device, where it batches), ``_info`` and
    ``_checksum`` in its ``__init__``.
    """

    #: micro-batch on CUDA when ``config.max_batch_size`` is None (1 on CPU: bitwise batch invariance)
    CUDA_BATCH = 16
    config: Any
    device: Any
    _info: CodecInfo
    _checksum: str

    @property
    def info(self) -> CodecInfo:
        return self._info

    def checksum(self) -> str:
        """sha256-based hex checksum of the model files (for stage fingerprints)."""
        return self._checksum

    @property
    def _batch_size(self) -> int:
        if self.config.max_batch_size is not None:
            return int(self.config.max_batch_size)
        return 1 if self.device.type == "cpu" else self.CUDA_BATCH

    def _chunking(self) -> tuple[int, int]:
        """(chunk, context) frames from ``config.chunk_s`` and ``context_s``; chunk_s 0: one chunk."""
        chunk_f = int(self.config.chunk_s * self._info.frame_rate) or 1 << 62
        return chunk_f, int(math.ceil(self.config.context_s * self._info.frame_rate))

    def _num_codebooks(self, total: int) -> int:
        """``config.n_codebooks`` (None: all `total` codebooks of the model), checked against `total`."""
        q = total if self.config.n_codebooks is None else int(self.config.n_codebooks)
        if q > total:
            raise ConfigError("n_codebooks", q, f"must be <= the model's {total} codebooks")
        return q

    def _encode_chunked(self, ws: Sequence[np.ndarray],
                        encode: Callable[[np.ndarray], Sequence[np.ndarray]]) -> list[np.ndarray]:
        """Encodes checked float32 (S_i,) waves in the `_chunking` plan, all chunks of all waves
        batched by `run_bucketed`; returns uint16 (ceil(S_i / hop), Q) codes per wave, in order.

        `encode` maps a float32 batch (B, 1, S) to B int (t, Q) code arrays.
        """
        chunk_f, ctx_f = self._chunking()
        plans = [plan_chunks(len(w), self._info.hop_length, chunk_f, ctx_f) for w in ws]
        pieces = [w[None, c.start : c.stop] for w, plan in zip(ws, plans, strict=True) for c in plan]
        outs: list[np.ndarray] = run_bucketed(pieces, encode, max_batch_samples=self.config.max_batch_samples,
                                              max_batch_size=self._batch_size)
        result, k = [], 0
        for plan in plans:
            result.append(stitch(outs[k : k + len(plan)], plan).astype(np.uint16))
            k += len(plan)
        return result

    def _decode_chunked(self, codes: np.ndarray, num_samples: int | None,
                        decode: Callable[[np.ndarray], np.ndarray], chunk_frames: int | None = None) -> np.ndarray:
        """Decodes uint16 (T, Q) codes (checked against `info`) in chunks of `chunk_frames`
        (default: the `_chunking` plan) with the configured context; returns float32 (T * hop,)
        audio, trimmed to `num_samples` when given.

        `decode` maps one chunk's int64 (t, Q) codes to float32 (~t * hop,) audio; a shorter
        output is zero-filled at the tail, a longer one cut to ``t * hop``.
        """
        c = check_codes(codes, self._info)
        chunk_f, ctx_f = self._chunking()
        plan = plan_chunks(len(c), 1, chunk_f if chunk_frames is None else chunk_frames, ctx_f)
        hop = self._info.hop_length
        outs = []
        for p in plan:
            y = decode(c[p.start : p.stop])
            want = (p.stop - p.start) * hop
            outs.append(np.pad(y[:want], (0, max(0, want - len(y)))))
        audio = stitch(outs, plan, scale=hop)
        return (audio[:num_samples] if num_samples else audio).astype(np.float32)


def check_chunk_batch_limits(context_s: float, max_batch_samples: int,
                             max_batch_size: int | None) -> None:
    """The chunk-context and batch bounds every codec config shares (`ConfigError` names the field)."""
    check_at_least(0, context_s=context_s)
    check_at_least(1, max_batch_samples=max_batch_samples, max_batch_size=max_batch_size)


def check_waves(waves: Sequence[np.ndarray], sr: int, expected_sr: int) -> list[np.ndarray]:
    """Validates a batch of mono waveforms; returns them as contiguous float32 (S,) arrays.

    Raises:
        ConfigError: `sr` differs from the codec's rate (resample with lhotse first).
        InputError: a wave is not 1-D, is empty, or holds NaN/Inf.
    """
    if sr != expected_sr:
        raise ConfigError("sr", sr, f"must equal the codec's sample rate {expected_sr} (resample first)")
    out = []
    for i, w in enumerate(waves):
        a = np.ascontiguousarray(np.asarray(w, dtype=np.float32))
        if a.ndim != 1:
            raise InputError(f"wave[{i}]", f"must be mono with shape (S,), but has shape {a.shape}")
        if a.size == 0:
            raise InputError(f"wave[{i}]", "is empty (0 samples)")
        if not np.isfinite(a).all():
            raise InputError(f"wave[{i}]", "holds NaN or Inf samples")
        out.append(a)
    return out


def check_codes(codes: np.ndarray, info: CodecInfo) -> np.ndarray:
    """Validates a (T, Q) code matrix against `info`; returns it as int64.

    Raises:
        InputError: wrong rank, wrong Q, or a code outside ``[0, codebook_size)``.
    """
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] != info.num_codebooks:
        raise InputError(
            "codes", f"must have shape (T, {info.num_codebooks}), but has shape {c.shape}"
        )
    if c.shape[0] == 0:
        raise InputError("codes", "has 0 frames")
    c64 = c.astype(np.int64)
    if c64.min() < 0 or c64.max() >= info.codebook_size:
        raise InputError(
            "codes",
            f"must lie in [0, {info.codebook_size}), but span [{c64.min()}, {c64.max()}]",
        )
    return c64


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames a codec emits for `num_samples` samples: ``ceil(num_samples / hop_length)``."""
    return -(-num_samples // hop_length)


def resolve_device(device: str) -> Any:
    """`"cpu"`, `"cuda"`, `"cuda:1"` -> torch.device; errors clearly when CUDA is absent."""
    # lazy: torch takes seconds to import
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", device, "must be available (no CUDA device here; use 'cpu')")
    return dev
