"""Lyra v2 (SoundStream encoder + residual VQ + LyraGAN decoder) through `ai-edge-litert`.

The released ``.tflite`` files (``../shared/models/lyra-v2``) are streaming models with one
signature each and batch size 1:

    soundstream_encoder.tflite  serving_default: input_audio (1, 320) float32 in [-1, 1]
                                -> output_0 (1, 1, 64) latent per 20 ms frame (stateful)
    quantizer.tflite            encode: input_frames (1, 1, 64), num_quantizers () int32
                                -> output_0 (46, 1, 1) int32 indices (unused codebooks -1)
                                decode: encoding_indices (46, 1, 1) -> output_0 (1, 1, 64)
    lyragan.tflite              serving_default: input_audio (1, 1, 64) -> output_0 (1, 320)
                                (stateful)

16 kHz, 50 frames/s (320 samples/frame), up to 46 codebooks of 16 entries (4 bits each:
16 codebooks = 3.2 kbps). The encoder and decoder keep streaming state inside the interpreter, and
``Interpreter.reset_all_variables()`` does NOT clear it (tested: codes then depend on the cuts
encoded before), so each cut gets fresh encoder/decoder interpreters (about 3 ms to build). There is no
batch dimension, so "batched" encoding is a loop; it is exact by construction. A cut's last
partial frame is zero-padded: ``T = ceil(S / 320)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.features.checksum import file_sha256
from speechtok.tokenizers.acoustic.base import CodecBase, CodecInfo, check_codes, check_waves

MAX_QUANTIZERS = 46
_FILES = ("soundstream_encoder.tflite", "quantizer.tflite", "lyragan.tflite")
HOP = 320
SAMPLE_RATE = 16_000


@dataclass(frozen=True, kw_only=True)
class LyraConfig:
    """How to run Lyra v2.

    Attributes:
        model_dir: folder with the three ``.tflite`` files.
        num_quantizers: codebooks to use, 1..46 (16 = 3.2 kbps, 30 = 6 kbps, 46 = 9.2 kbps).
        num_threads: TFLite interpreter threads.
    """

    model_dir: str
    num_quantizers: int = 16
    num_threads: int = 1

    def validate(self) -> None:
        if not 1 <= self.num_quantizers <= MAX_QUANTIZERS:
            raise ConfigError("num_quantizers", self.num_quantizers, f"must be in [1, {MAX_QUANTIZERS}]")
        check_at_least(1, num_threads=self.num_threads)
        d = Path(self.model_dir)
        for f in _FILES:
            if not (d / f).is_file():
                raise ConfigError("model_dir", self.model_dir, f"must contain {f} (Lyra v2 release)")


class LyraTokenizer(CodecBase):
    """Lyra v2 encode/decode (see module docstring)."""

    def __init__(self, cfg: LyraConfig) -> None:
        cfg.validate()
        self.config = cfg
        d = Path(cfg.model_dir)
        self._quant = self._interpreter(_FILES[1])
        self._q_enc: Any = self._quant.get_signature_runner("encode")
        self._q_dec: Any = self._quant.get_signature_runner("decode")
        self._checksum = "".join(file_sha256(d / f)[:16] for f in _FILES)
        self._info = CodecInfo(
            name="lyra_v2", sample_rate=SAMPLE_RATE, hop_length=HOP, frame_rate=SAMPLE_RATE / HOP,
            num_codebooks=cfg.num_quantizers, codebook_size=16,
        )

    def _interpreter(self, name: str) -> Any:
        # lazy: ai_edge_litert is optional (Lyra only)
        from ai_edge_litert.interpreter import Interpreter

        path = Path(self.config.model_dir) / name
        it = Interpreter(model_path=str(path), num_threads=self.config.num_threads)
        it.allocate_tensors()
        return it

    def encode(self, wave: np.ndarray) -> np.ndarray:
        """float32 (S,) 16 kHz in [-1, 1] -> uint16 (ceil(S / 320), num_quantizers)."""
        n = -(-len(wave) // HOP)
        x = np.zeros(n * HOP, dtype=np.float32)
        x[: len(wave)] = wave
        enc = self._interpreter(_FILES[0]).get_signature_runner()  # fresh streaming state
        nq = np.array(self.config.num_quantizers, dtype=np.int32)
        codes = np.empty((n, self.config.num_quantizers), dtype=np.uint16)
        for t in range(n):
            z = enc(input_audio=x[None, t * HOP : (t + 1) * HOP])["output_0"]  # (1,1,64)
            idx = self._q_enc(input_frames=z, num_quantizers=nq)["output_0"][:, 0, 0]  # (46,)
            used = idx[: self.config.num_quantizers]
            if used.min() < 0:
                raise InputError("lyra quantizer", f"returned -1 within the first {len(used)} codebooks")
            codes[t] = used
        return codes

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """float32 (S_i,) at 16 kHz -> uint16 (ceil(S_i / 320), Q) each (a loop; exact)."""
        return [self.encode(w) for w in check_waves(waves, sr, SAMPLE_RATE)]

    def decode(self, codes: np.ndarray, num_samples: int | None = None) -> np.ndarray:
        """uint16 (T, Q) -> float32 (T * 320,) audio, trimmed to `num_samples` when given."""
        c = check_codes(codes, self._info).astype(np.int32)
        dec = self._interpreter(_FILES[2]).get_signature_runner()  # fresh streaming state
        idx = np.full((MAX_QUANTIZERS, 1, 1), -1, dtype=np.int32)
        out = np.empty(len(c) * HOP, dtype=np.float32)
        for t in range(len(c)):
            idx[: c.shape[1], 0, 0] = c[t]
            z = self._q_dec(encoding_indices=idx)["output_0"]  # (1, 1, 64)
            out[t * HOP : (t + 1) * HOP] = dec(input_audio=z)["output_0"][0]
        return out[:num_samples] if num_samples else out
