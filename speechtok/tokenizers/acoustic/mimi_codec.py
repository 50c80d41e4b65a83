"""Mimi codes (Kyutai; Moshi, Sesame CSM) through `transformers.MimiModel`, from a local directory.

Model directory: see `hf_local` (``config.json`` with model_type ``mimi`` + ``model.safetensors``;
the Hub repo ``kyutai/mimi`` has this layout). The released model: 24 kHz, hop 1920 samples
(12.5 frames/s), 32 codebooks of 2048 entries (the first is the semantic, distilled one); Moshi
uses 8 codebooks (1.1 kbps).

Encoding, stated:
- A cut of `S` samples is zero-padded on the right to ``T * 1920`` samples, ``T = ceil(S / 1920)``.
  The encoder is causal, so padding only touches the last frame, and it is the same padding
  whether the cut is encoded alone or in a batch.
- Every cut is encoded in chunks of `chunk_s` seconds with the model's own streaming state: the
  causal convolutions' padding cache (``MimiConv1dPaddingCache``) and the encoder transformer's
  key/value cache (a ``DynamicCache`` holding the whole past, which is what one unchunked call
  attends to: HF's sdpa/eager path applies a plain causal mask). Chunked codes therefore equal
  unchunked ones up to float summation order (measured on a tiny random model: the quantizer input
  differs by <= 2e-5; codes can flip only where two codewords tie within that). Memory grows with
  the cut (the key/value cache is ~32 KB per 25 Hz step for the released size: 2.9 GB per hour);
  split hour-long recordings into cuts first.
- Batches hold cuts of identical padded length only (`batching.run_bucketed`), streamed together;
  on CPU the default micro-batch is 1, which makes batched codes bitwise those of each cut alone.

Decoding: ``MimiModel.decode`` on chunks of `chunk_s` with `context_s` of codes either side
(`chunking.plan_chunks` in the frame domain); audio is ``T * 1920`` samples, trimmed on request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speechtok.errors import ConfigError
from speechtok.tokenizers.acoustic.base import (
    CodecBase,
    CodecInfo,
    check_chunk_batch_limits,
    check_waves,
    resolve_device,
)
from speechtok.tokenizers.acoustic.batching import run_bucketed
from speechtok.tokenizers.acoustic.hf_local import check_model_dir, load_pretrained, looks_like_dir


@dataclass(frozen=True, kw_only=True)
class MimiCodecConfig:
    """How to load and run Mimi.

    Attributes:
        model_dir: local model directory (see `hf_local`), or a hub id in the HF cache.
        allow_download: permit fetching a hub id that is not cached (needs a network); the
            CLI's ``--allow-download`` allows it for the whole run.
        n_codebooks: codebooks to emit (the first Q of the split RVQ; >= 1, the first is the
            semantic one); None = all of the model's (32 for the release; Moshi uses 8).
        device: torch device string.
        chunk_s: seconds of audio per streaming step (rounded down to whole frames, >= 1 frame).
        context_s: decoding only: seconds of codes either side of a decoded chunk.
        max_batch_samples: bound on batch_size * samples per forward (memory).
        max_batch_size: cuts per forward; None: 1 on CPU (bitwise batch invariance), 16 on CUDA.
    """

    model_dir: str
    allow_download: bool = False
    n_codebooks: int | None = None
    device: str = "cpu"
    chunk_s: float = 10.0
    context_s: float = 2.0
    max_batch_samples: int = 24_000 * 120
    max_batch_size: int | None = None

    def validate(self) -> None:
        if not self.model_dir:
            raise ConfigError("model_dir", self.model_dir, "must name a local Mimi model directory")
        if looks_like_dir(self.model_dir):
            check_model_dir(self.model_dir, "mimi")  # names the expected files when absent
        if self.n_codebooks is not None and self.n_codebooks < 1:
            raise ConfigError("n_codebooks", self.n_codebooks, "must be >= 1 (or None for all)")
        if self.chunk_s <= 0:
            raise ConfigError("chunk_s", self.chunk_s, "must be > 0 (seconds per streaming step)")
        check_chunk_batch_limits(self.context_s, self.max_batch_samples, self.max_batch_size)


class MimiTokenizer(CodecBase):
    """Mimi encode/decode with streaming chunks and exact batching (see module docstring)."""

    def __init__(self, cfg: MimiCodecConfig) -> None:
        # lazy: transformers only on this path
        from transformers import MimiModel

        cfg.validate()
        self.config = cfg
        self.device = resolve_device(cfg.device)
        model, self._checksum = load_pretrained(MimiModel, cfg.model_dir, "mimi",
                                                allow_download=cfg.allow_download)
        self.model: Any = model.to(self.device)
        mc = model.config
        q = self._num_codebooks(int(mc.num_quantizers))
        sr = int(mc.sampling_rate)
        hop = int(round(sr / float(mc.frame_rate)))
        self._info = CodecInfo(name="mimi", sample_rate=sr, hop_length=hop,
                               frame_rate=sr / hop, num_codebooks=q,
                               codebook_size=int(mc.codebook_size))

    def _chunk_frames(self) -> int:
        return max(1, int(self.config.chunk_s * self._info.frame_rate))

    def _encode(self, x: np.ndarray) -> list[np.ndarray]:
        # x: (B, 1, T * hop) float32 -> B x (T, Q) int64, streamed chunk by chunk
        # lazy: transformers takes seconds to import
        from transformers import DynamicCache

        step = self._chunk_frames() * self._info.hop_length
        xt = torch.from_numpy(x).to(self.device)
        padding_cache, kv = None, DynamicCache()
        outs = []
        with torch.inference_mode():
            for s in range(0, xt.shape[-1], step):
                o = self.model.encode(xt[..., s : s + step], num_quantizers=self._info.num_codebooks,
                                      use_streaming=True, padding_cache=padding_cache,
                                      encoder_past_key_values=kv, return_dict=True)
                padding_cache, kv = o.padding_cache, o.encoder_past_key_values
                outs.append(o.audio_codes)  # (B, Q, t)
            return list(torch.cat(outs, dim=-1).permute(0, 2, 1).cpu().numpy())

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """float32 (S_i,) waves at `sr` -> uint16 (ceil(S_i / hop), Q) codes, in input order."""
        ws = check_waves(waves, sr, self._info.sample_rate)
        hop = self._info.hop_length
        pieces = [np.pad(w, (0, -len(w) % hop))[None] for w in ws]  # (1, T * hop) each
        outs: list[np.ndarray] = run_bucketed(pieces, self._encode,
                                              max_batch_samples=self.config.max_batch_samples,
                                              max_batch_size=self._batch_size)
        return [o.astype(np.uint16) for o in outs]

    @torch.inference_mode()
    def _decode_piece(self, c: np.ndarray) -> np.ndarray:
        # c: (t, Q) int64 -> (t * hop,) float32
        ct = torch.from_numpy(np.ascontiguousarray(c.T[None])).to(self.device)
        return self.model.decode(ct, return_dict=True).audio_values[0, 0].cpu().numpy()

    def decode(self, codes: np.ndarray, num_samples: int | None = None) -> np.ndarray:
        """uint16 (T, Q) -> float32 (T * hop,) audio (trimmed to `num_samples` when given)."""
        return self._decode_chunked(codes, num_samples, self._decode_piece, self._chunk_frames())
