"""DAC codes through `descript-audio-codec` (``import dac``; not the unrelated PyPI ``dac``).

Weights: the ``.pth`` files DAC releases and ``DAC.save(path, package=False)`` writes, a dict
``{"state_dict": ..., "metadata": {"kwargs": <DAC constructor kwargs>, ...}}``. ``DAC.load``
first tries ``torch.package`` (which unpickles code) and then a plain ``torch.load``; speechtok
instead reads the file with ``torch.load(weights_only=True)`` (tensors and plain containers
only), builds ``dac.DAC(**kwargs)`` from the metadata and loads the state dict: same model, no
code execution from the file. Files saved as a torch package are refused with that explanation.
``download=True`` uses ``dac.utils.download`` (needs a network) and then the same loader.

Encoding is ``model.encode`` on ``model.preprocess``-ed audio (right-padded to a hop multiple),
with the first `n_codebooks` quantizers, in exact-length batches; cuts longer than `chunk_s` in
chunks with `context_s` of real audio either side (`chunking.py`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from speechtok import hub
from speechtok.errors import ConfigError, InputError
from speechtok.features.checksum import file_sha256
from speechtok.tokenizers.acoustic.base import (
    CodecBase,
    CodecInfo,
    check_chunk_batch_limits,
    check_waves,
    resolve_device,
)
from speechtok.tokenizers.acoustic.torch_common import load_checkpoint, prepare_for_inference

_RATES = {"16khz": 16_000, "24khz": 24_000, "44khz": 44_100}

#: Constructor kwargs of the released models (``dac.utils`` downloads these).
RELEASED_KWARGS: dict[str, dict[str, Any]] = {
    "44khz": dict(encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], n_codebooks=9,
                  sample_rate=44_100),
    "24khz": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=32,
                  sample_rate=24_000),
    "16khz": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=12,
                  sample_rate=16_000),
}


@dataclass(frozen=True, kw_only=True)
class DacConfig:
    """How to load and run DAC.

    Attributes:
        model: ``"16khz"``, ``"24khz"`` or ``"44khz"``; the checkpoint's sample rate must match.
        checkpoint: local ``.pth`` weights file (state dict + metadata kwargs).
        download: allow ``dac.utils.download`` when `checkpoint` is None (needs a network).
        n_codebooks: codebooks to emit (first Q of the RVQ); None = all of the model's.
        device: torch device string.
        chunk_s: cuts longer than this are encoded (and decoded) in chunks; 0 disables.
        context_s: real audio on each side of a chunk, trimmed after encoding.
        max_batch_samples: bound on batch_size * samples per forward (memory).
        max_batch_size: bound on pieces per forward; None: 1 on CPU (measured: batched CPU
            convolutions run slower than a loop, EnCodec 2x slower at B=8, DAC 7 % at B=4),
            32 on CUDA.
    """

    model: Literal["16khz", "24khz", "44khz"] = "44khz"
    checkpoint: str | None = None
    download: bool = False
    n_codebooks: int | None = None
    device: str = "cpu"
    chunk_s: float = 30.0
    context_s: float = 1.0
    max_batch_samples: int = 44_100 * 60
    max_batch_size: int | None = None

    def validate(self) -> None:
        if self.model not in _RATES:
            raise ConfigError("model", self.model, f"must be one of {sorted(_RATES)}")
        if self.checkpoint is None and not self.download:
            raise ConfigError("checkpoint", None, "must be a local DAC .pth file unless download=True")
        if self.n_codebooks is not None and self.n_codebooks < 1:
            raise ConfigError("n_codebooks", self.n_codebooks, "must be >= 1 (or None for all)")
        if self.chunk_s < 0:
            raise ConfigError("chunk_s", self.chunk_s, "must be >= 0 (0 disables chunking)")
        check_chunk_batch_limits(self.context_s, self.max_batch_samples, self.max_batch_size)


def load_dac(path: str) -> tuple[Any, dict[str, Any]]:
    """Reads a DAC ``.pth`` weights file safely; returns (untrained-then-loaded DAC, kwargs).

    Raises:
        InputError: not a weights-only file (e.g. a torch package), no ``metadata.kwargs``, or
            the state dict lacks parameters of the model the kwargs describe.
    """
    # lazy: dac only for this codec
    import dac

    obj = load_checkpoint(path)
    if not (isinstance(obj, dict) and "state_dict" in obj and "kwargs" in obj.get("metadata", {})):
        raise InputError(
            path, "must be a DAC weights file {'state_dict', 'metadata': {'kwargs'}} "
            "(save with DAC.save(path, package=False))"
        )
    allowed = set(inspect.signature(dac.DAC).parameters)
    kwargs = {k: v for k, v in obj["metadata"]["kwargs"].items() if k in allowed}
    model = dac.DAC(**kwargs)
    missing, _unexpected = model.load_state_dict(obj["state_dict"], strict=False)
    if missing:
        raise InputError(path, f"lacks {len(missing)} parameters of DAC({kwargs}), e.g. {missing[:3]}")
    return model, kwargs


class DacTokenizer(CodecBase):
    """DAC encode/decode with exact batching (see module docstring)."""

    CUDA_BATCH = 32

    def __init__(self, cfg: DacConfig) -> None:
        cfg.validate()
        self.config = cfg
        self.device = resolve_device(cfg.device)
        path = cfg.checkpoint
        if path is None:
            # lazy: dac (with torchaudio) takes seconds to import; only this codec needs it
            import dac

            if not hub.downloads_allowed():
                raise ConfigError("checkpoint", None, "must be a local DAC .pth file: downloads are off "
                                  "(pass --allow-download to fetch the released one)")
            path = str(dac.utils.download(model_type=cfg.model))
        self._checksum = file_sha256(path)
        model, kwargs = load_dac(path)
        if int(model.sample_rate) != _RATES[cfg.model]:
            raise ConfigError(
                "model", cfg.model, f"must match the checkpoint's sample rate {model.sample_rate}"
            )
        q = self._num_codebooks(int(model.n_codebooks))
        self.model: Any = prepare_for_inference(model, self.device)
        self.kwargs = kwargs
        hop = int(model.hop_length)
        self._info = CodecInfo(
            name=f"dac_{cfg.model}", sample_rate=int(model.sample_rate), hop_length=hop,
            frame_rate=model.sample_rate / hop, num_codebooks=q,
            codebook_size=int(model.codebook_size),
        )

    def _encode(self, x: np.ndarray) -> list[np.ndarray]:
        # x: (B, 1, S) float32 -> B x (T, Q) int64
        with torch.inference_mode():
            xt = self.model.preprocess(torch.from_numpy(x).to(self.device), self._info.sample_rate)
            z = self.model.encoder(xt)  # (B, D, T)
            _, codes, _, _, _ = self.model.quantizer(z, self._info.num_codebooks)
            return list(codes[:, : self._info.num_codebooks].permute(0, 2, 1).cpu().numpy())

    def encode_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """float32 (S_i,) waves at `sr` -> uint16 (ceil(S_i / hop), Q) codes, in input order.

        Identical to encoding each wave alone (exact-length batches; same chunk plan)."""
        return self._encode_chunked(check_waves(waves, sr, self._info.sample_rate), self._encode)

    @torch.inference_mode()
    def _decode_piece(self, c: np.ndarray) -> np.ndarray:
        # c: (t, Q) int64 -> (~t * hop,) float32
        ct = torch.from_numpy(np.ascontiguousarray(c.T[None])).to(self.device)
        z = self.model.quantizer.from_codes(ct)[0]  # (1, D, t)
        return self.model.decode(z)[0, 0].cpu().numpy()

    def decode(self, codes: np.ndarray, num_samples: int | None = None) -> np.ndarray:
        """uint16 (T, Q) -> float32 (T * hop,) audio (trimmed to `num_samples` when given).

        The decoder emits a few samples fewer than ``T * hop``; the tail is zero-filled."""
        return self._decode_chunked(codes, num_samples, self._decode_piece)
