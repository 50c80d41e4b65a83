"""X-Codec codes (semantic + acoustic RVQ) through `transformers.XcodecModel`, from a local directory.

Model directory: see `hf_local` (``config.json`` with model_type ``xcodec`` + ``model.safetensors``;
the Hub repos ``hf-audio/xcodec-hubert-librispeech`` and friends have this layout). X-Codec joins a
DAC acoustic encoder with a HuBERT/WavLM semantic model (its weights are part of the file); the
released models: 16 kHz, hop 320 (50 frames/s), up to 8 codebooks of 1024 entries (4 kbps).

The config's ``semantic_model_config`` may name a Hub id in ``_name_or_path``, which transformers
would fetch; speechtok builds that sub-config from the fields stored in ``config.json`` instead
(its ``model_type``: hubert or wavlm), so loading stays offline.

Encoding, stated:
- A cut of `S` samples is zero-padded on the right to ``T * hop``, ``T = ceil(S / hop)`` (the
  model's own frame count is not a simple function of `S`). The model is not causal and HuBERT's
  first layer normalises over the whole input (GroupNorm over time), so the padding changes
  codes near the end; it is the same padding alone or in a batch.
- `n_codebooks` = the first Q of the RVQ (residual quantisation is sequential, so these equal
  the codes the model gives for the bandwidth with Q codebooks).
- X-Codec has no streaming state. Cuts longer than `chunk_s` are encoded in chunks with
  `context_s` of real audio either side (`chunking.py`); HuBERT's attention and GroupNorm see
  the whole chunk, so chunked codes differ from unchunked ones in places (the tests measure it).
- Batches hold pieces of identical length only; on CPU the default micro-batch is 1.
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
from speechtok.tokenizers.acoustic.hf_local import check_model_dir, load_pretrained, looks_like_dir

_DROP = ("architectures", "model_type", "transformers_version", "_name_or_path")


@dataclass(frozen=True, kw_only=True)
class XcodecCodecConfig:
    """How to load and run X-Codec.

    Attributes:
        model_dir: local model directory (see `hf_local`), or a hub id in the HF cache.
        allow_download: permit fetching a hub id that is not cached (needs a network); the
            CLI's ``--allow-download`` allows it for the whole run.
        n_codebooks: the first Q codebooks; None = all of the model's (8 for the releases).
        device: torch device string.
        chunk_s: cuts longer than this are encoded (and decoded) in chunks; 0 disables.
        context_s: real audio (or codes) on each side of a chunk, trimmed after.
        max_batch_samples: bound on batch_size * samples per forward (memory).
        max_batch_size: pieces per forward; None: 1 on CPU, 16 on CUDA.
    """

    model_dir: str
    allow_download: bool = False
    n_codebooks: int | None = None
    device: str = "cpu"
    chunk_s: float = 30.0
    context_s: float = 2.0
    max_batch_samples: int = 16_000 * 120
    max_batch_size: int | None = None

    def validate(self) -> None:
        if not self.model_dir:
            raise ConfigError("model_dir", self.model_dir, "must name a local X-Codec model directory")
        if looks_like_dir(self.model_dir):
            check_model_dir(self.model_dir, "xcodec")  # names the expected files when absent
        if self.n_codebooks is not None and self.n_codebooks < 1:
            raise ConfigError("n_codebooks", self.n_codebooks, "must be >= 1 (or None for all)")
        if self.chunk_s < 0:
            raise ConfigError("chunk_s", self.chunk_s, "must be >= 0 (0 disables chunking)")
        check_chunk_batch_limits(self.context_s, self.max_batch_samples, self.max_batch_size)


def offline_xcodec_config(raw: dict[str, Any]) -> Any:
    """An `XcodecConfig` from a parsed ``config.json``, the semantic sub-config built from its
    stored fields (never fetched by ``_name_or_path``)."""
    # lazy: transformers only on this path
    from transformers import CONFIG_MAPPING, XcodecConfig

    fields = {k: v for k, v in raw.items() if k not in _DROP}
    sem = dict(fields.pop("semantic_model_config", None) or {})
    sem_type = sem.pop("model_type", "hubert")
    if sem_type not in ("hubert", "wavlm"):
        raise ConfigError("semantic_model_config.model_type", sem_type, "must be hubert or wavlm")
    for k in _DROP:
        sem.pop(k, None)
    semantic: Any = CONFIG_MAPPING[sem_type](**sem)
    return XcodecConfig(**fields, semantic_model_config=semantic)


class XcodecTokenizer(CodecBase):
    """X-Codec encode/decode with exact batching (see module docstring)."""

    def __init__(self, cfg: XcodecCodecConfig) -> None:
        # lazy: transformers takes seconds to import
        from transformers import XcodecModel

        cfg.validate()
        self.config = cfg
        self.device = resolve_device(cfg.device)
        model, self._checksum = load_pretrained(XcodecModel, cfg.model_dir, "xcodec",
                                                allow_download=cfg.allow_download,
                                                config=offline_xcodec_config)
        self.model: Any = model.to(self.device)
        mc = model.config
        q = self._num_codebooks(int(mc.num_quantizers))
        self._bandwidth = float(mc.target_bandwidths[-1])
        hop = int(mc.hop_length)
        sr = int(mc.sample_rate)
        self._info = CodecInfo(name="xcodec", sample_rate=sr, hop_length=hop, frame_rate=sr / hop,
                               num_codebooks=q, codebook_size=int(mc.codebook_size))

    def _encode(self, x: np.ndarray) -> list[np.ndarray]:
        # x: (B, 1, t * hop) float32 -> B x (t, Q) int64
        with torch.inference_mode():
            codes = self.model.encode(torch.from_numpy(x).to(self.device), bandwidth=self._bandwidth,
                                      return_dict=True).audio_codes  # (B, Q_all, t)
            return list(codes[:, : self._info.num_codebooks].permute(0, 2, 1).cpu().numpy())

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """float32 (S_i,) waves at `sr` -> uint16 (ceil(S_i / hop), Q) codes, in input order."""
        hop = self._info.hop_length
        padded = [np.pad(w, (0, -len(w) % hop)) for w in check_waves(waves, sr, self._info.sample_rate)]
        return self._encode_chunked(padded, self._encode)  # each (T * hop,) float32

    @torch.inference_mode()
    def _decode_piece(self, c: np.ndarray) -> np.ndarray:
        # c: (t, Q) int64 -> (t * hop,) float32
        ct = torch.from_numpy(np.ascontiguousarray(c.T[None])).to(self.device)
        return self.model.decode(ct, return_dict=True).audio_values[0, 0].cpu().numpy()

    def decode(self, codes: np.ndarray, num_samples: int | None = None) -> np.ndarray:
        """uint16 (T, Q) -> float32 (T * hop,) audio (trimmed to `num_samples` when given)."""
        return self._decode_chunked(codes, num_samples, self._decode_piece)
