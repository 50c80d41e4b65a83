"""dMel: a training-free speech tokenizer (Bai et al., 2024, "dMel: speech tokenization made simple").

Each log-mel channel is quantised into `n_bins` equal-width bins between a low and a high value
(per channel, taken as the min/max over training data, or one global range), so a frame becomes
`n_mels` tokens, one per channel, each in [0, n_bins). Decoding maps a token to its bin centre,
so the log-mel error is at most half a bin for values inside the range. A waveform comes back
through Griffin-Lim (torchaudio `InverseMelScale` + `GriffinLim`), a vocoder with no weights.

Shapes: waveform `(S,)` float32 -> log-mel `(T, n_mels)` float32 -> tokens `(T, n_mels)` uint8
(uint16 when n_bins > 256), T = 1 + S // hop_length (centred frames).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from speechtok import atomic
from speechtok.errors import ConfigError, InputError, check_at_least

RANGE_MODES = ("per_channel", "global")


@dataclass(frozen=True, kw_only=True)
class DMelConfig:
    """Log-mel analysis and quantisation settings.

    Attributes:
        sample_rate: expected input rate in Hz (resample upstream, e.g. with lhotse).
        n_mels: mel channels (tokens per frame).
        n_bins: quantisation bins per channel (the paper uses 16).
        n_fft, win_length, hop_length: STFT settings in samples (defaults: 25 ms windows every
            10 ms at 16 kHz, zero-padded to a 1024-point FFT). ``n_fft`` must give at least as
            many linearly independent frequency bins as there are mel channels, or the mel
            filterbank cannot be inverted for decoding: 80 mels need ``n_fft`` >= 1024 at 16 kHz
            (400 gives rank 75, 512 rank 78); `validate` refuses such a pair.
        f_min, f_max: mel filterbank range in Hz (f_max None = Nyquist).
        log_floor: power floor before the log.
        range_mode: "per_channel" (bin edges per channel) or "global" (one range for all).
        griffin_lim_iters: iterations of Griffin-Lim when vocoding.
        device: torch device for the transforms ("cpu", "cuda", ...).
    """

    sample_rate: int = 16000
    n_mels: int = 80
    n_bins: int = 16
    n_fft: int = 1024
    win_length: int = 400
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float | None = None
    log_floor: float = 1e-5
    range_mode: str = "per_channel"
    griffin_lim_iters: int = 32
    device: str = "cpu"

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        for name in ("sample_rate", "n_mels", "n_fft", "win_length", "hop_length"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if not 2 <= self.n_bins <= 65535:
            raise ConfigError("n_bins", self.n_bins, "must be in [2, 65535]")
        if self.win_length > self.n_fft:
            raise ConfigError("win_length", self.win_length, f"must be <= n_fft ({self.n_fft})")
        if self.range_mode not in RANGE_MODES:
            raise ConfigError("range_mode", self.range_mode, f"must be one of {RANGE_MODES}")
        if self.log_floor <= 0:
            raise ConfigError("log_floor", self.log_floor, "must be > 0")
        check_at_least(1, griffin_lim_iters=self.griffin_lim_iters)
        rank = mel_filterbank_rank(self)
        if rank < self.n_mels:
            good = next((n for n in (512, 1024, 2048, 4096, 8192) if n >= self.n_fft and
                         mel_filterbank_rank(replace(self, n_fft=n)) == self.n_mels), None)
            fewer = next((m for m in range(self.n_mels - 1, 0, -1)
                          if mel_filterbank_rank(replace(self, n_mels=m)) == m), 1)
            fix = (f"raise n_fft to {good} (win_length stays {self.win_length}: a zero-padded "
                   f"FFT)" if good else "raise n_fft") + f" or use n_mels <= {fewer}"
            raise ConfigError(
                "n_fft", self.n_fft,
                f"must resolve {self.n_mels} mel channels, but its {self.n_fft // 2 + 1} "
                f"frequency bins give a mel filterbank of rank {rank} < n_mels {self.n_mels} "
                f"at {self.sample_rate} Hz, so tokens could not be decoded back to audio "
                f"(InverseMelScale is rank-deficient); {fix}")


def mel_filterbank_rank(config: DMelConfig) -> int:
    """Rank of the `(n_fft // 2 + 1, n_mels)` float32 mel filterbank `config` analyses with;
    decoding (`DMelTokenizer.vocode`) needs it to equal ``n_mels``."""
    # lazy: torchaudio (and torch) only on this path
    import torchaudio

    fb = torchaudio.functional.melscale_fbanks(
        config.n_fft // 2 + 1, config.f_min, config.f_max or config.sample_rate / 2,
        config.n_mels, config.sample_rate)
    return int(torch.linalg.matrix_rank(fb))  # float32, as InverseMelScale solves it


@dataclass(frozen=True)
class DMelInfo:
    """What a consumer of dMel tokens needs: frames per second, bins, tokens per frame."""

    frame_rate: float
    vocab_size: int
    num_codebooks: int


class DMelTokenizer:
    """Encodes log-mel frames into per-channel bin indices and back.

    Attributes:
        config: the `DMelConfig`.
        low, high: `(n_mels,)` float32 range of each channel (equal for "global").
    """

    def __init__(self, config: DMelConfig, low: np.ndarray, high: np.ndarray) -> None:
        config.validate()
        low = np.broadcast_to(np.asarray(low, np.float32), (config.n_mels,)).copy()
        high = np.broadcast_to(np.asarray(high, np.float32), (config.n_mels,)).copy()
        if not (np.isfinite(low).all() and np.isfinite(high).all()) or (high < low).any():
            raise InputError("dMel range", "needs finite low <= high for every channel")
        self.config = config
        self.low, self.high = low, high
        # a constant channel still gets a positive bin width
        self.width = np.maximum((high - low) / config.n_bins, 1e-6).astype(np.float32)
        self._mel: torch.nn.Module | None = None

    @property
    def info(self) -> DMelInfo:
        c = self.config
        return DMelInfo(frame_rate=c.sample_rate / c.hop_length, vocab_size=c.n_bins, num_codebooks=c.n_mels)

    @classmethod
    def fit(cls, log_mels: Iterable[np.ndarray], config: DMelConfig) -> DMelTokenizer:
        """Bin ranges from training log-mels `(T_i, n_mels)` (streamed: min/max only)."""
        lo = np.full(config.n_mels, np.inf, np.float32)
        hi = np.full(config.n_mels, -np.inf, np.float32)
        for i, m in enumerate(log_mels):
            if m.ndim != 2 or m.shape[1] != config.n_mels:
                raise InputError(f"log-mel {i}", f"must be (T, {config.n_mels}), got {m.shape}")
            if len(m):
                lo, hi = np.minimum(lo, m.min(axis=0)), np.maximum(hi, m.max(axis=0))
        if not np.isfinite(lo).all():
            raise InputError("log_mels", "are empty; dMel needs training frames to set bin ranges")
        if config.range_mode == "global":
            lo, hi = np.full_like(lo, lo.min()), np.full_like(hi, hi.max())
        return cls(config, lo, hi)

    @classmethod
    def fit_waves(cls, waves: Iterable[np.ndarray], config: DMelConfig) -> DMelTokenizer:
        """Bin ranges from training waveforms `(S_i,)` at `config.sample_rate`."""
        probe = cls(config, np.zeros(config.n_mels), np.ones(config.n_mels))
        return cls.fit((probe.log_mel(w) for w in waves), config)

    def _mel_transform(self) -> torch.nn.Module:
        if self._mel is None:
            # lazy: torchaudio (and torch) take seconds to import
            import torchaudio

            c = self.config
            self._mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=c.sample_rate, n_fft=c.n_fft, win_length=c.win_length,
                hop_length=c.hop_length, f_min=c.f_min, f_max=c.f_max, n_mels=c.n_mels,
                power=2.0, center=True,
            ).to(c.device)
        return self._mel

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """Waveform `(S,)` float32 at `config.sample_rate` -> log-mel `(T, n_mels)` float32."""
        if wave.ndim != 1:
            raise InputError("wave", f"must be mono (S,), but has shape {wave.shape}")
        with torch.inference_mode():
            x = torch.as_tensor(np.ascontiguousarray(wave, np.float32), device=self.config.device)
            mel = self._mel_transform()(x)  # (n_mels, T)
            out = torch.log(torch.clamp(mel, min=self.config.log_floor)).T
        return out.cpu().numpy().astype(np.float32)

    def encode(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel `(T, n_mels)` -> tokens `(T, n_mels)` uint8 (uint16 if n_bins > 256)."""
        if log_mel.ndim != 2 or log_mel.shape[1] != self.config.n_mels:
            raise InputError("log_mel", f"must be (T, {self.config.n_mels}), got {log_mel.shape}")
        b = np.floor((log_mel - self.low) / self.width)
        dtype = np.uint8 if self.config.n_bins <= 256 else np.uint16
        return np.clip(b, 0, self.config.n_bins - 1).astype(dtype)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens `(T, n_mels)` -> log-mel `(T, n_mels)` float32 (bin centres)."""
        if tokens.ndim != 2 or tokens.shape[1] != self.config.n_mels:
            raise InputError("tokens", f"must be (T, {self.config.n_mels}), got {tokens.shape}")
        if tokens.size and int(tokens.max()) >= self.config.n_bins:
            raise InputError("tokens", f"token {int(tokens.max())} >= n_bins {self.config.n_bins}")
        return (self.low + (tokens.astype(np.float32) + 0.5) * self.width).astype(np.float32)

    def encode_wave(self, wave: np.ndarray) -> np.ndarray:
        """Waveform `(S,)` -> tokens `(T, n_mels)`."""
        return self.encode(self.log_mel(wave))

    def encode_batch(self, waves: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Tokens of each waveform; identical to encoding each alone (no padding across cuts)."""
        return [self.encode_wave(w) for w in waves]

    def vocode(self, log_mel: np.ndarray, length: int | None = None) -> np.ndarray:
        """Log-mel `(T, n_mels)` -> waveform `(S,)` float32 by Griffin-Lim (deterministic)."""
        # lazy: torchaudio (and torch) take seconds to import
        import torchaudio

        c = self.config
        with torch.inference_mode():
            mel = torch.exp(torch.as_tensor(log_mel, device=c.device).T)  # (n_mels, T) power
            inv = torchaudio.transforms.InverseMelScale(
                n_stft=c.n_fft // 2 + 1, n_mels=c.n_mels, sample_rate=c.sample_rate,
                f_min=c.f_min, f_max=c.f_max,
            ).to(c.device)
            spec = torch.clamp(inv(mel), min=0.0)  # (n_fft//2+1, T) power
            gl = torchaudio.transforms.GriffinLim(
                n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length, power=2.0,
                n_iter=c.griffin_lim_iters, rand_init=False, length=length,
            ).to(c.device)
            wave = gl(spec)
        return wave.cpu().numpy().astype(np.float32)

    def decode_wave(self, tokens: np.ndarray, length: int | None = None) -> np.ndarray:
        """Tokens `(T, n_mels)` -> waveform `(S,)` float32 (bin centres, then Griffin-Lim)."""
        return self.vocode(self.decode(tokens), length)

    def save(self, path: str | Path) -> Path:
        """Writes the config and ranges as JSON to `path`."""
        p = Path(path)
        doc = {"format": "speechtok.dmel", "config": asdict(self.config),
               "low": self.low.tolist(), "high": self.high.tolist()}
        atomic.write_text(p, json.dumps(doc, indent=2) + "\n")
        return p

    @classmethod
    def load(cls, path: str | Path) -> DMelTokenizer:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != "speechtok.dmel":
            raise InputError(str(path), "is not a dMel tokenizer file (format != speechtok.dmel)")
        return cls(DMelConfig(**doc["config"]), np.array(doc["low"]), np.array(doc["high"]))
