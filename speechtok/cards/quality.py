"""Resynthesis quality for the token cards, all at 16 kHz, with the real models here:

- STOI, SI-SDR, multi-scale mel distance: `speechtok.tokenizers.acoustic.metrics`;
- DNSMOS (P.835 SIG / BAK / OVRL and P.808 MOS) through ``speechmos`` (ONNX models in its wheel);
- speaker similarity: cosine of Resemblyzer GE2E embeddings (weights in its wheel, read with
  ``torch.load(weights_only=True)``) of the original and the resynthesis;
- WER of Whisper tiny.en (CTranslate2, beam 1, ../shared) on the resynthesis, next to the WER
  on the original audio (the ASR model's own floor on this corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
from speechtok.trainers.metrics import wer as corpus_wer

SR = 16_000


class SpeakerEncoder:
    """Resemblyzer's GE2E voice encoder: wave (16 kHz) -> unit-norm (256,) embedding."""

    def __init__(self) -> None:
        # lazy: resemblyzer only for speaker similarity
        import resemblyzer
        import torch
        from resemblyzer import VoiceEncoder

        self._pre = resemblyzer.preprocess_wav
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        self.enc = VoiceEncoder(device="cpu", verbose=False, weights_fpath=weights)
        state = torch.load(weights, map_location="cpu", weights_only=True)  # tensors only
        self.enc.load_state_dict(state["model_state"], strict=False)

    def embed(self, wave: np.ndarray) -> np.ndarray | None:
        w = self._pre(np.asarray(wave, np.float32), source_sr=SR)
        if len(w) < SR // 4:  # under 0.25 s of voiced audio after VAD trimming
            return None
        return np.asarray(self.enc.embed_utterance(w), np.float32)


def speaker_similarity(enc: SpeakerEncoder, ref: np.ndarray, est: np.ndarray) -> float:
    """Cosine similarity of GE2E embeddings (NaN when either has too little voiced audio)."""
    a, b = enc.embed(ref), enc.embed(est)
    if a is None or b is None:
        return float("nan")
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def dnsmos(wave: np.ndarray) -> dict[str, float]:
    """DNSMOS of one 16 kHz wave: ``{ovrl_mos, sig_mos, bak_mos, p808_mos}``."""
    # lazy: speechmos takes most of a second to import; only DNSMOS needs it
    from speechmos import dnsmos as dns

    peak = float(np.abs(wave).max()) or 1.0
    r: Any = dns.run(np.asarray(wave / max(peak, 1.0), np.float32), SR)
    return {k: float(r[k]) for k in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}


class Transcriber:
    """Whisper tiny.en 1-best (CTranslate2, beam 1, 1 thread) over 16 kHz waves."""

    def __init__(self, model_dir: Path) -> None:
        self.asr = WhisperNBest(WhisperNBestConfig(model_dir=model_dir, beam_size=1, num_hypotheses=1,
                                                   threads=1))

    def __call__(self, waves: Sequence[np.ndarray]) -> list[str]:
        ready = [w if w.size >= 1600 else np.zeros(1600, np.float32) for w in waves]
        return [h[0].text if h else "" for h in self.asr.decode_batch(ready)]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER (normalised text), a fraction."""

    return float(corpus_wer(list(refs), list(hyps)).rate)
