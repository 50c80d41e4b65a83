"""Reconstruction metrics per cut and per corpus.

- SI-SDR (dB): scale-invariant SDR of zero-mean signals (Le Roux et al. 2019).
- Multi-scale mel distance: mean over STFT scales of the L1 distance between log10 mel
  magnitudes, as in DAC's ``MelSpectrogramLoss`` (windows 32..2048, hop = window / 4, mel bands
  5..320).
- STOI: `pystoi.stoi` (resamples to 10 kHz internally); NaN for cuts too short to score.
- Bitrate: nominal (``frame_rate * Q * log2(codebook_size)``) and the empirical entropy bound
  (``frame_rate * sum_q H(codebook q)``).
- Codebook usage: fraction of entries used, entropy in bits and perplexity per codebook.

Reference and estimate are cut to the shorter of the two before comparing (decoders may emit a
few samples more or fewer).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from speechtok.errors import InputError
from speechtok.tokenizers.acoustic.base import CodecInfo

MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    e = np.asarray(est, dtype=np.float64).reshape(-1)
    n = min(len(r), len(e))
    if n == 0:
        raise InputError("metrics", f"needs non-empty signals, got {len(r)} and {len(e)} samples")
    return r[:n], e[:n]


def si_sdr(ref: np.ndarray, est: np.ndarray, eps: float = 1e-10) -> float:
    """SI-SDR in dB of `est` against `ref` (both (S,), any float dtype)."""
    r, e = _pair(ref, est)
    r, e = r - r.mean(), e - e.mean()
    target = (np.dot(e, r) / (np.dot(r, r) + eps)) * r
    noise = e - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def mel_distance(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Multi-scale log-mel L1 distance (lower is better); see module docstring."""
    # lazy: torchaudio (and torch) only on this path
    import torchaudio.functional as AF

    r, e = _pair(ref, est)
    x = torch.from_numpy(np.stack([r, e]).astype(np.float32))  # (2, S)
    total = 0.0
    for win, n_mels in zip(MEL_WINDOWS, MEL_BANDS, strict=True):
        spec = torch.stft(
            x, n_fft=win, hop_length=win // 4, window=torch.hann_window(win),
            return_complex=True, center=True,
        ).abs()  # (2, win // 2 + 1, frames)
        fb = AF.melscale_fbanks(win // 2 + 1, 0.0, sr / 2, n_mels, sr, norm="slaney", mel_scale="slaney")
        mel = torch.einsum("cft,fm->cmt", spec, fb)
        logmel = torch.log10(mel.clamp(min=1e-5))
        total += float((logmel[0] - logmel[1]).abs().mean())
    return total / len(MEL_WINDOWS)


def stoi(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Short-time objective intelligibility in [0, 1] via `pystoi`.

    NaN when the cut is too short for STOI's 384 ms analysis segments after silent frames are
    removed (pystoi then warns and returns 1e-5, which would bias corpus means); corpus means
    skip NaN and report how many cuts were scored.
    """

    # lazy: pystoi brings scipy (a second to import); only this metric needs it
    from pystoi import stoi as _stoi

    r, e = _pair(ref, est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(r, e, sr, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    return value


def reconstruction_metrics(ref: np.ndarray, est: np.ndarray, sr: int) -> dict[str, float]:
    """{"si_sdr", "mel_distance", "stoi"} of one cut."""
    return {"si_sdr": si_sdr(ref, est), "mel_distance": mel_distance(ref, est, sr), "stoi": stoi(ref, est, sr)}


def codebook_histograms(codes: Iterable[np.ndarray], codebook_size: int) -> np.ndarray:
    """Counts of each entry per codebook over cuts: int64 (Q, codebook_size)."""
    hist: np.ndarray | None = None
    for c in codes:
        c = np.asarray(c)
        if hist is None:
            hist = np.zeros((c.shape[1], codebook_size), dtype=np.int64)
        for q in range(c.shape[1]):
            hist[q] += np.bincount(c[:, q].astype(np.int64), minlength=codebook_size)[:codebook_size]
    if hist is None:
        raise InputError("codes", "is empty: no cut to count")
    return hist


def codebook_usage(hist: np.ndarray) -> dict[str, list[float]]:
    """Per codebook: used fraction of entries, entropy (bits), perplexity (2**entropy)."""
    p = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return {
        "used_fraction": [float(u) for u in (hist > 0).mean(axis=1)],
        "entropy_bits": [float(h) for h in ent],
        "perplexity": [float(2**h) for h in ent],
    }


@dataclass
class CorpusMetrics:
    """Accumulates per-cut metrics and code histograms; `summary()` gives corpus figures.

    Use: ``acc.add(cut_id, ref, est, codes)`` per cut, then ``acc.summary()``.
    """

    info: CodecInfo
    per_cut: dict[str, dict[str, float]] = field(default_factory=dict)
    _hist: np.ndarray | None = None
    _seconds: float = 0.0
    _frames: int = 0

    def add(self, cut_id: str, ref: np.ndarray, est: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """Scores one cut (ref, est: float (S,) at info.sample_rate; codes: (T, Q))."""
        m = reconstruction_metrics(ref, est, self.info.sample_rate)
        self.per_cut[cut_id] = m
        h = codebook_histograms([codes], self.info.codebook_size)
        self._hist = h if self._hist is None else self._hist + h
        self._seconds += len(ref) / self.info.sample_rate
        self._frames += len(codes)
        return m

    def summary(self) -> dict[str, float | list[float]]:
        """Corpus means of the per-cut metrics, bitrates and codebook usage."""
        if self._hist is None:
            raise InputError("CorpusMetrics", "has no cuts; call add() first")
        out: dict[str, float | list[float]] = {}
        for k in ("si_sdr", "mel_distance", "stoi"):
            vals = np.array([m[k] for m in self.per_cut.values()], dtype=np.float64)
            out[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        out["stoi_scored_cuts"] = float(np.isfinite([m["stoi"] for m in self.per_cut.values()]).sum())
        usage = codebook_usage(self._hist)
        out.update(usage)
        out["num_cuts"] = float(len(self.per_cut))
        out["seconds"] = self._seconds
        out["bitrate_nominal"] = self.info.bitrate
        out["bitrate_measured"] = self._frames * self.info.bits_per_frame / max(self._seconds, 1e-9)
        out["bitrate_entropy"] = self.info.frame_rate * float(sum(usage["entropy_bits"]))
        return out
