"""Whisper encoder states, from a `transformers` Whisper directory or a CTranslate2 one.

Whisper's encoder takes exactly 30 s of log-mel (3000 frames at 100 Hz) and returns 1500 states
(50 Hz, one per 320 samples). A signal is cut into consecutive, non-overlapping 30 s windows
(the last one shorter); each window is zero-padded to 30 s, as Whisper itself does, turned
into log-mel, encoded, and its states are cropped back to the window's audio:
``ceil(len(window) / 320)`` frames. The cropped windows are concatenated, so a signal of S
samples gives ``ceil(S / 320)`` frames. Edge behaviour: states near a window boundary see only
their own window (Whisper's own view of long audio); the log-mel clamp (``max - 8``) is taken
per window. Windows are batched freely: each is padded to 30 s whatever the batch holds, so a
batched call equals one call per signal.

Log-mel: `transformers.WhisperFeatureExtractor` for transformers models,
`faster_whisper.feature_extractor.FeatureExtractor` for CTranslate2 models (the pairing each
runtime's own pipeline uses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.features.checksum import model_checksum
from speechtok.hub import resolve_model

WINDOW_SAMPLES = 480_000  # 30 s at 16 kHz
HOP_SAMPLES = 320  # one encoder state per 20 ms
SAMPLING_RATE = 16_000


@dataclass(frozen=True, kw_only=True)
class WhisperStatesConfig:
    """Options of Whisper encoder-state extraction.

    Attributes:
        model: a transformers Whisper directory (``config.json`` with ``model_type`` whisper),
            a CTranslate2 Whisper directory (``model.bin`` + ``config.json``), or a hub id
            (transformers; from the Hugging Face cache, downloaded only with ``--allow-download``).
        backend: ``"auto"`` (CTranslate2 when the directory holds ``model.bin`` and no
            transformers weights), ``"transformers"`` or ``"ctranslate2"``.
        device: ``"cpu"`` or ``"cuda"``.
        layer: transformers only: hidden-state index of the encoder (0 = after the positional
            embedding, ``encoder_layers`` = the final, layer-normed output); None = final.
        batch_windows: 30 s windows per encoder call.
        threads: CTranslate2 intra-op threads (0 = its default).
        compute_type: CTranslate2 compute type (``"default"``: float32 on CPU, float16 on CUDA
            where the weights are float16).
        dtype: output dtype, ``"float16"`` or ``"float32"``.
    """

    model: str
    backend: str = "auto"
    device: str = "cpu"
    layer: int | None = None
    batch_windows: int = 4
    threads: int = 0
    compute_type: str = "default"
    dtype: str = "float16"

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("model", self.model, "must name a Whisper directory or hub id")
        if self.backend not in ("auto", "transformers", "ctranslate2"):
            raise ConfigError("backend", self.backend, "must be 'auto', 'transformers' or 'ctranslate2'")
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ConfigError("device", self.device, "must be 'cpu' or 'cuda'")
        if self.layer is not None and self.layer < 0:
            raise ConfigError("layer", self.layer, "must be >= 0 or None")
        check_at_least(1, batch_windows=self.batch_windows)
        check_at_least(0, threads=self.threads)
        if self.dtype not in ("float16", "float32"):
            raise ConfigError("dtype", self.dtype, "must be 'float16' or 'float32'")


def _detect_backend(model: str) -> str:
    d = Path(model).expanduser()
    if not d.is_dir():
        return "transformers"
    hf_weights = any(d.glob("*.safetensors")) or (d / "pytorch_model.bin").exists()
    return "ctranslate2" if (d / "model.bin").exists() and not hf_weights else "transformers"


def num_frames(num_samples: int) -> int:
    """Encoder states for a signal of `num_samples` samples at 16 kHz: ``ceil(S / 320)``."""
    return math.ceil(int(num_samples) / HOP_SAMPLES)


class WhisperEncoderStates:
    """Encoder states of a Whisper model (see module docstring).

    Args:
        model: a `WhisperStatesConfig` (taken as it is), or a directory or hub id.
        device: ``"cpu"`` or ``"cuda"`` (with a directory or hub id).
        **options: the other `WhisperStatesConfig` fields (with a directory or hub id).
    """

    def __init__(self, model: str | Path | WhisperStatesConfig, device: str = "cpu", **options: Any) -> None:
        self.cfg = model if isinstance(model, WhisperStatesConfig) else \
            WhisperStatesConfig(model=str(model), device=device, **options)
        self.cfg.validate()
        self.backend = self.cfg.backend if self.cfg.backend != "auto" else _detect_backend(self.cfg.model)
        self._local = Path(self.cfg.model).expanduser()
        self.revision: str | None = None
        self._checksum: str | None = None
        if self.backend == "ctranslate2":
            self._load_ct2()
        else:
            self._load_hf()

    def _load_ct2(self) -> None:
        # lazy: ctranslate2 only when decoding
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        if self.cfg.layer is not None:
            raise ConfigError("layer", self.cfg.layer, "must be None for CTranslate2 (it returns the final states)")
        if not (self._local / "model.bin").exists():
            raise InputError(self.cfg.model, "is not a CTranslate2 Whisper directory (no model.bin)")
        self._ct2 = ctranslate2.models.Whisper(
            str(self._local), device=self.cfg.device, compute_type=self.cfg.compute_type,
            intra_threads=self.cfg.threads,
        )
        self.n_mels = int(self._ct2.n_mels)
        self._fe = FeatureExtractor(feature_size=self.n_mels)
        self.dim = -1  # known after the first call (the CT2 config holds no d_model)

    def _load_hf(self) -> None:
        # lazy: transformers takes seconds to import
        import transformers

        resolved = resolve_model(self.cfg.model)  # local dir or cached snapshot; offline by default
        self._local, self.revision = resolved.path, resolved.revision
        source = str(resolved.path)
        try:
            model = transformers.WhisperModel.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InputError(self.cfg.model, f"cannot load a transformers Whisper model ({exc})") from exc
        self._encoder = model.get_encoder().to(self.cfg.device).eval()
        del model  # the decoder is not needed
        conf = self._encoder.config
        if self.cfg.layer is not None and self.cfg.layer > conf.encoder_layers:
            raise ConfigError("layer", self.cfg.layer, f"must be <= encoder_layers ({conf.encoder_layers})")
        self.n_mels = int(conf.num_mel_bins)
        self.dim = int(conf.d_model)
        if (self._local / "preprocessor_config.json").exists():
            self._hf_fe = transformers.WhisperFeatureExtractor.from_pretrained(source, local_files_only=True)
        else:
            self._hf_fe = transformers.WhisperFeatureExtractor(feature_size=self.n_mels)

    @property
    def frame_rate(self) -> float:
        return SAMPLING_RATE / HOP_SAMPLES

    def model_checksum(self) -> str | None:
        """sha256 over the model's weight files, or None for a hub id."""
        if self._checksum is None and self._local.is_dir():
            self._checksum = model_checksum(self._local)
        return self._checksum

    def _ensure_dim(self) -> int:
        """The state size D; CTranslate2 configs do not hold it, so encode one silent window."""
        if self.dim < 0:
            self._encode(self.log_mel(np.zeros(HOP_SAMPLES, dtype=np.float32))[None])
        return self.dim

    def group_meta_fields(self) -> dict[str, Any]:
        """What a stage puts in `GroupMeta`: frame rate, dim, dtype, model checksum."""
        return {"frame_rate": self.frame_rate, "dim": self._ensure_dim(),
                "dtype": self.cfg.dtype, "model_checksum": self.model_checksum()}

    def describe(self) -> dict[str, Any]:
        """Provenance for a stage config."""
        return {**asdict(self.cfg), "backend": self.backend, "frame_rate": self.frame_rate,
                "window_seconds": WINDOW_SAMPLES / SAMPLING_RATE, "model_checksum": self.model_checksum(),
                "revision": self.revision}

    def log_mel(self, window: np.ndarray) -> np.ndarray:
        """One window (<= 30 s, float32) -> zero-padded to 30 s -> (n_mels, 3000) float32 log-mel."""
        padded = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        padded[: window.size] = window
        if self.backend == "ctranslate2":
            mel = self._fe(padded, padding=0)
        else:
            mel = self._hf_fe(padded, sampling_rate=SAMPLING_RATE, return_tensors="np").input_features[0]
        return np.ascontiguousarray(mel[:, :3000], dtype=np.float32)

    def _encode(self, mels: np.ndarray) -> np.ndarray:
        """(B, n_mels, 3000) float32 -> (B, 1500, D) float32."""
        if self.backend == "ctranslate2":
            # lazy: ctranslate2 only for the CTranslate2 backend
            import ctranslate2

            out = self._ct2.encode(ctranslate2.StorageView.from_array(mels), to_cpu=True)
            arr = np.array(out, dtype=np.float32)
            self.dim = int(arr.shape[-1])
            return arr
        with torch.inference_mode():
            x = torch.from_numpy(mels).to(self.cfg.device)
            if self.cfg.layer is None:
                return self._encoder(x).last_hidden_state.float().cpu().numpy()
            hs = self._encoder(x, output_hidden_states=True).hidden_states
            return hs[self.cfg.layer].float().cpu().numpy()

    def extract_batch(self, waves: Sequence[np.ndarray], sr: int = SAMPLING_RATE) -> list[np.ndarray]:
        """Encoder states of each signal.

        Args:
            waves: float signals (S_i,) in [-1, 1] at 16 kHz.
            sr: their sampling rate (must be 16000).

        Returns:
            One array (ceil(S_i / 320), D) of cfg.dtype (float16 by default) per signal.
        """
        if sr != SAMPLING_RATE:
            raise InputError("waves", f"sampling rate is {sr} Hz but Whisper expects 16000 Hz; resample first")
        windows: list[tuple[int, np.ndarray]] = []  # (signal index, samples <= 30 s)
        for i, w in enumerate(waves):
            arr = np.asarray(w, dtype=np.float32)
            if arr.ndim != 1:
                raise InputError(f"signal {i}", f"must be 1-D (S,), but has shape {arr.shape}")
            windows.extend((i, arr[s : s + WINDOW_SAMPLES]) for s in range(0, arr.size, WINDOW_SAMPLES))
        parts: list[list[np.ndarray]] = [[] for _ in waves]
        step = self.cfg.batch_windows
        for b in range(0, len(windows), step):
            chunk = windows[b : b + step]
            mels = np.stack([self.log_mel(w) for _, w in chunk])  # (B, n_mels, 3000)
            states = self._encode(mels)  # (B, 1500, D)
            for (i, w), st in zip(chunk, states, strict=True):
                parts[i].append(st[: num_frames(w.size)])
        out_dtype = np.float16 if self.cfg.dtype == "float16" else np.float32
        dim = self._ensure_dim() if any(not p for p in parts) else self.dim
        return [
            np.concatenate(p).astype(out_dtype) if p else np.zeros((0, dim), dtype=out_dtype)
            for p in parts
        ]

    def extract(self, wave: np.ndarray, sr: int = SAMPLING_RATE) -> np.ndarray:
        """Encoder states of one signal: (ceil(S / 320), D)."""
        return self.extract_batch([wave], sr)[0]
