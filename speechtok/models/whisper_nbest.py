"""Whisper n-best lists with acoustic scores, batched, through CTranslate2.

Log-mel features come from `faster_whisper.feature_extractor.FeatureExtractor` (the same as
faster-whisper's own transcription), padded or trimmed to one 30 s window ``(n_mels, 3000)``;
a batch is ``(B, n_mels, 3000)`` float32, so batching changes no shapes (every item is one full
window), only how many windows CTranslate2 decodes at once.

Scores: with ``return_scores=True`` CTranslate2 returns the beam score, the sum of token
log-probabilities divided by ``num_tokens ** length_penalty``; we keep both that
(`Hypothesis.am_score_norm`, per token when ``length_penalty == 1``) and the sum
(`Hypothesis.am_score` = score * ``num_tokens ** length_penalty``). Utterances longer than one
window (30 s) are not decoded (an n-best over several windows is not one list); they are
reported by `decode_utterances` in `skipped`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.features.checksum import file_sha256
from speechtok.models.nbest import (
    Hypothesis,
    NBestList,
    Utterance,
    load_audio_or_leave_out,
    read_jsonl,
    write_jsonl,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 30.0
N_FRAMES = 3000  # one 30 s window at 100 Hz


@lru_cache(maxsize=4)
def _extractor(n_mels: int) -> Any:
    # lazy: faster_whisper only when decoding
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=n_mels)


def log_mel(wave: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Log-mel of a 16 kHz mono wave `(S,)` float32 (at most 30 s), as `(n_mels, 3000)` float32."""
    if wave.ndim != 1:
        raise InputError("wave", f"must be mono (S,), but has shape {wave.shape}")
    if len(wave) > SAMPLE_RATE * WINDOW_S:
        raise InputError("wave", f"is {len(wave) / SAMPLE_RATE:.1f} s; at most 30 s fit one window")
    feats = _extractor(n_mels)(wave)[:, :N_FRAMES]
    out = np.zeros((feats.shape[0], N_FRAMES), dtype=np.float32)
    out[:, : feats.shape[1]] = feats
    return out


@dataclass(frozen=True, kw_only=True)
class WhisperNBestConfig:
    """How to decode n-best lists with a CTranslate2 Whisper model."""

    model_dir: Path
    beam_size: int = 5
    num_hypotheses: int = 5
    batch_size: int = 8
    length_penalty: float = 1.0
    max_length: int = 448
    device: str = "cpu"
    compute_type: str = "default"
    threads: int = 0  # CTranslate2 intra_threads; 0 = its default

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        if not (Path(self.model_dir) / "model.bin").exists():
            raise ConfigError("model_dir", str(self.model_dir),
                              "must be a CTranslate2 Whisper directory (with model.bin)")
        if self.beam_size < 1:
            raise ConfigError("beam_size", self.beam_size, "must be >= 1")
        if not 1 <= self.num_hypotheses <= self.beam_size:
            raise ConfigError("num_hypotheses", self.num_hypotheses, f"must be in [1, beam_size={self.beam_size}]")
        if self.batch_size < 1:
            raise ConfigError("batch_size", self.batch_size, "must be >= 1")
        if self.threads < 0:
            raise ConfigError("threads", self.threads, "must be >= 0")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError("device", self.device, "must be 'cpu', 'cuda' or 'cuda:N'")


def _split_device(device: str) -> tuple[str, int]:
    if device.startswith("cuda:"):
        return "cuda", int(device.split(":", 1)[1])
    return device, 0


def model_checksum(model_dir: Path) -> str:
    """sha256 (first 16 hex digits) of ``model.bin``, to key caches on the exact weights."""
    return file_sha256(Path(model_dir) / "model.bin")[:16]


class WhisperNBest:
    """Batched n-best decoding with a CTranslate2 Whisper model (English-only or multilingual).

    Multilingual models are prompted for English transcription without timestamps.
    """

    def __init__(self, config: WhisperNBestConfig) -> None:
        config.validate()
        # lazy: ctranslate2 only when decoding
        import ctranslate2
        import tokenizers

        self.config = config
        device, index = _split_device(config.device)
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(str(config.model_dir), device=device, device_index=index,
                                                compute_type=config.compute_type, intra_threads=config.threads)
        self.tokenizer = tokenizers.Tokenizer.from_file(str(Path(config.model_dir) / "tokenizer.json"))
        tok = ["<|startoftranscript|>"]
        if self.model.is_multilingual:
            tok += ["<|en|>", "<|transcribe|>"]
        tok.append("<|notimestamps|>")
        self.prompt = [self._token_id(t) for t in tok]
        self.eot = self._token_id("<|endoftext|>")

    def _token_id(self, token: str) -> int:
        tid = self.tokenizer.token_to_id(token)
        if tid is None:
            raise InputError(str(self.config.model_dir), f"tokenizer has no {token} token")
        return int(tid)

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """Log-mel features of one 16 kHz mono wave `(S,)` float32, as `(n_mels, 3000)` float32."""
        return log_mel(wave, self.model.n_mels)

    def decode_batch(self, waves: Sequence[np.ndarray]) -> list[list[Hypothesis]]:
        """N-best lists of a batch of 16 kHz mono waves (each `(S,)` float32, at most 30 s).

        Returns one list of `num_hypotheses` hypotheses per wave, best first.
        """
        if not waves:
            return []
        for i, w in enumerate(waves):
            if w.ndim != 1:
                raise InputError(f"wave #{i}", f"must be mono (S,), but has shape {w.shape}")
            if len(w) > WINDOW_S * SAMPLE_RATE:
                raise InputError(f"wave #{i}", f"is {len(w) / SAMPLE_RATE:.1f} s; at most 30 s fit one window")
        feats = np.stack([self.log_mel(w) for w in waves])  # (B, n_mels, 3000)
        cfg = self.config
        results = self.model.generate(self._ct2.StorageView.from_array(feats), [self.prompt] * len(waves),
                                      beam_size=cfg.beam_size, num_hypotheses=cfg.num_hypotheses,
                                      length_penalty=cfg.length_penalty, max_length=cfg.max_length, return_scores=True)
        out: list[list[Hypothesis]] = []
        for res in results:
            hyps = []
            for rank, (ids, score) in enumerate(zip(res.sequences_ids, res.scores, strict=True)):
                ids = [t for t in ids if t < self.eot]
                n = len(ids)
                total = float(score) * max(n, 1) ** cfg.length_penalty
                hyps.append(Hypothesis(text=self.tokenizer.decode(ids).strip(), rank=rank, am_score=total,
                                       am_score_norm=total / max(n, 1), num_tokens=n))
            out.append(hyps)
        return out

    def decode_utterances(self, utts: Iterable[Utterance], *, cache: Path | None = None,
                          skipped: list[str] | None = None,
                          left_out: dict[str, str] | None = None) -> Iterator[NBestList]:
        """Decodes utterances in batches of `config.batch_size`, in input order.

        Args:
            utts: utterances (audio read with soundfile, resampled to 16 kHz if needed).
            cache: a JSONL file (see `speechtok.models.nbest`); utterances already in
                it are read back instead of decoded, new ones are appended as they finish, so an
                interrupted run resumes where it stopped.
            skipped: if given, ids of utterances longer than 30 s are appended to it.
            left_out: if given, an utterance whose audio cannot be decoded (a header that opens
                over a corrupt body) is left out, its id -> reason recorded here, and the rest
                decoded; without it such audio raises `InputError`.

        Yields:
            One `NBestList` per decoded utterance (source ``"whisper"``).
        """
        done: dict[str, NBestList] = {}
        if cache is not None and cache.exists():
            done = {nb.id: nb for nb in read_jsonl(cache)}
        pending: list[tuple[Utterance, np.ndarray]] = []

        def flush() -> list[NBestList]:
            hyps = self.decode_batch([w for _, w in pending])
            lists = [NBestList(id=u.id, source="whisper", hyps=tuple(h), reference=u.text, speaker=u.speaker,
                               duration=round(len(w) / SAMPLE_RATE, 4))
                     for (u, w), h in zip(pending, hyps, strict=True)]
            if cache is not None:
                write_jsonl(cache, lists, append=True)
            pending.clear()
            return lists

        for u in utts:
            if u.id in done:
                if pending:
                    yield from flush()
                yield done[u.id]
                continue
            wave = load_audio_or_leave_out(u, SAMPLE_RATE, left_out)
            if wave is None:
                continue
            if len(wave) > WINDOW_S * SAMPLE_RATE:
                log.warning("%s is %.1f s long; skipped (one 30 s window per n-best)", u.id, len(wave) / SAMPLE_RATE)
                if skipped is not None:
                    skipped.append(u.id)
                continue
            pending.append((u, wave))
            if len(pending) >= self.config.batch_size:
                yield from flush()
        if pending:
            yield from flush()
