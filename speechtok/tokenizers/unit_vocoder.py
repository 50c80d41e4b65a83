"""A weight-free vocoder for k-means units of log-mel filterbanks.

Units of a k-means model fitted on fbank frames (``feats.fbank``, Kaldi log-mel) index
centroids that *are* log-mel frames, so units go back to audio without a trained vocoder:
units (+ run lengths) -> centroid log-mel frames ``(T, M)`` -> mel power -> linear power
spectrum (least squares through the Kaldi mel banks, clamped at 0) -> Griffin-Lim with the
fbank's STFT geometry (25 ms window, 10 ms hop, 512-point FFT) -> de-emphasis (the fbank
pre-emphasised the signal) -> peak-normalised waveform.

It is what makes text-to-unit generation of a token LM audible and scorable (intelligibility
as the WER of an ASR model on the generated audio); quality is that of Griffin-Lim on a
quantised spectrogram, so expect robotic but often intelligible speech. Models fitted with
PCA or spherical k-means have centroids outside log-mel space and are refused.

Shapes: units ``(N,)`` int -> log-mel ``(T, M)`` float32 -> waveform ``(S,)`` float32 at
``fbank.sampling_rate``, ``S = (T - 1) * hop`` (centred frames, as ``snip_edges=False``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.features.fbank import FbankConfig, mel_banks
from speechtok.tokenizers.kmeans import KMeansModel
from speechtok.tokenizers.units import dedup


class CentroidVocoder:
    """Units of an fbank k-means model -> waveform (see module docstring).

    Args:
        centroids: ``(K, M)`` float32 log-mel centroids.
        fbank: the `FbankConfig` the features were computed with.
        mean_run: ``(K,)`` float frames per run of each unit (for deduplicated units without
            durations), or None (1 frame each).
        griffin_lim_iters: Griffin-Lim iterations.
    """

    def __init__(self, centroids: np.ndarray, fbank: FbankConfig | None = None, *,
                 mean_run: np.ndarray | None = None, griffin_lim_iters: int = 32) -> None:
        self.fbank = fbank or FbankConfig()
        self.fbank.validate()
        if centroids.ndim != 2 or centroids.shape[1] != self.fbank.num_mel_bins:
            raise InputError("centroids", f"must be (K, {self.fbank.num_mel_bins}) log-mel frames, "
                                          f"but have shape {centroids.shape}")
        check_at_least(1, griffin_lim_iters=griffin_lim_iters)
        self.centroids = np.ascontiguousarray(centroids, np.float32)
        k = self.centroids.shape[0]
        if mean_run is not None and np.asarray(mean_run).shape != (k,):
            raise InputError("mean_run", f"must have shape ({k},), but has {np.asarray(mean_run).shape}")
        self.mean_run = None if mean_run is None else np.maximum(np.asarray(mean_run, np.float64), 1.0)
        self.griffin_lim_iters = griffin_lim_iters
        banks = mel_banks(self.fbank)  # (F-1, M): Kaldi drops the Nyquist bin
        self._pinv = torch.linalg.pinv(banks)  # (M, F-1)

    @classmethod
    def from_kmeans(cls, model: KMeansModel, fbank: FbankConfig | None = None, *,
                    mean_run: np.ndarray | None = None, griffin_lim_iters: int = 32) -> CentroidVocoder:
        """The vocoder of a k-means model fitted on raw fbank frames (no PCA, not spherical)."""
        if model.pca_matrix is not None or model.config.spherical:
            raise ConfigError("kmeans", "pca/spherical",
                              "must be off: only centroids in log-mel space can be vocoded")
        return cls(model.centroids, fbank, mean_run=mean_run, griffin_lim_iters=griffin_lim_iters)

    @staticmethod
    def mean_runs(unit_seqs: Sequence[np.ndarray], k: int) -> np.ndarray:
        """``(k,)`` float64: mean run length (frames) of each unit over `unit_seqs` (frame-level
        units ``(T,)``); 1 for units never seen."""

        total = np.zeros(k, np.float64)
        runs = np.zeros(k, np.float64)
        for u in unit_seqs:
            vals, lengths = dedup(np.asarray(u))  # runs over 65535 frames count as several
            np.add.at(total, vals.astype(np.int64), lengths.astype(np.float64))
            np.add.at(runs, vals.astype(np.int64), 1)
        return np.where(runs > 0, total / np.maximum(runs, 1), 1.0)

    def log_mel(self, units: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """Units ``(N,)`` (+ run lengths ``(N,)``; default: `mean_run` rounded, else 1) -> ``(T, M)``."""
        u = np.asarray(units, np.int64)
        k = self.centroids.shape[0]
        if u.size and (u.min() < 0 or u.max() >= k):
            raise InputError("units", f"ids must be in [0, {k}), but span [{u.min()}, {u.max()}]")
        if durations is None:
            reps = np.ones(u.size, np.int64) if self.mean_run is None else np.rint(self.mean_run[u]).astype(np.int64)
        else:
            reps = np.asarray(durations, np.int64)
            if reps.shape != u.shape or (reps.size and reps.min() < 1):
                raise InputError("durations", f"must be {u.shape} positive run lengths, got {reps.shape}")
        return np.repeat(self.centroids[u], reps, axis=0)

    def vocode(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel ``(T, M)`` -> waveform ``((T - 1) * hop,)`` float32, peak 0.5 (deterministic)."""
        # lazy: torchaudio (and torch) only on this path
        import torchaudio
        from scipy.signal import lfilter

        c = self.fbank
        hop = int(round(c.frame_shift * c.sampling_rate))
        win = int(round(c.frame_length * c.sampling_rate))
        n_fft = c.fft_length
        if log_mel.ndim != 2 or log_mel.shape[1] != c.num_mel_bins:
            raise InputError("log_mel", f"must be (T, {c.num_mel_bins}), got {log_mel.shape}")
        if log_mel.shape[0] == 0:
            return np.zeros(0, np.float32)
        with torch.inference_mode():
            mel = torch.exp(torch.as_tensor(log_mel, dtype=torch.float32))  # (T, M) power
            power = torch.clamp(mel @ self._pinv, min=0.0)  # (T, F-1)
            mag = torch.sqrt(torch.cat([power, power.new_zeros(power.shape[0], 1)], 1)).T  # (F, T)
            gl = torchaudio.transforms.GriffinLim(
                n_fft=n_fft, win_length=win, hop_length=hop, power=1.0, n_iter=self.griffin_lim_iters,
                rand_init=False, length=(log_mel.shape[0] - 1) * hop)
            wave = gl(mag).numpy().astype(np.float64)
        if c.preemph_coeff > 0:
            wave = lfilter([1.0], [1.0, -c.preemph_coeff], wave)
        wave -= wave.mean()
        peak = float(np.abs(wave).max())
        return (wave * (0.5 / peak) if peak > 0 else wave).astype(np.float32)

    def units_to_wave(self, units: np.ndarray, durations: np.ndarray | None = None) -> np.ndarray:
        """`log_mel` then `vocode`: units ``(N,)`` -> waveform ``(S,)`` float32."""
        return self.vocode(self.log_mel(units, durations))
