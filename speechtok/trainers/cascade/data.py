"""Utterances for the cascade: a Kaldi-style directory, and deterministic speaker splits.

Reads ``wav.scp`` (``ID PATH``, paths relative to the directory; no pipes), ``text`` and
``utt2spk`` directly with `soundfile`, so the cascade does not need a manifest step first.

Splits are by speaker: `speechtok.manifests.splits.split_of` when that module is present,
otherwise the same rule written here (`_split_of`): the first 8 bytes of
``sha256(f"{seed}:{speaker}")`` as an integer over 2**64 is a point in [0, 1); it falls into
train / dev / test by the cumulative ratios. Every utterance of a speaker lands in one split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.errors import ConfigError, InputError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, kw_only=True)
class Utterance:
    """One utterance of a Kaldi directory."""

    id: str
    path: Path
    text: str | None
    speaker: str


def _read_table(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, value = line.partition(" ")
            if key in out:
                raise InputError(f"{path}:{n}", f"repeats id {key!r}; ids must be unique")
            out[key] = value.strip()
    return out


def read_kaldi_dir(data_dir: Path) -> list[Utterance]:
    """Reads `data_dir`'s ``wav.scp``, ``text`` (optional) and ``utt2spk`` (optional).

    Returns the utterances in ``wav.scp`` order. Without ``utt2spk`` the speaker is the id.
    """
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.exists():
        raise InputError(str(data_dir), "has no wav.scp; pass a Kaldi-style data directory")
    wavs = _read_table(wav_scp)
    texts = _read_table(data_dir / "text") if (data_dir / "text").exists() else {}
    spks = _read_table(data_dir / "utt2spk") if (data_dir / "utt2spk").exists() else {}
    utts = []
    for uid, rel in wavs.items():
        if rel.endswith("|"):
            raise InputError(f"{wav_scp}:{uid}", "is a pipe command; convert the audio to files first")
        p = Path(rel)
        utts.append(
            Utterance(
                id=uid,
                path=p if p.is_absolute() else data_dir / p,
                text=texts.get(uid),
                speaker=spks.get(uid, uid),
            )
        )
    return utts


def load_audio(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Reads a mono file as float32 `(S,)` at `sample_rate` (resampled with lhotse if needed)."""
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(str(path), f"cannot be read by soundfile: {exc}") from exc
    mono = wave.mean(axis=1).astype(np.float32)
    if sr != sample_rate:
        from lhotse.augmentation import Resample

        mono = Resample(source_sampling_rate=sr, target_sampling_rate=sample_rate)(mono[None])[0]
    return np.ascontiguousarray(mono, dtype=np.float32)


def _split_of(key: str, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    acc = 0.0
    for name, r in zip(SPLITS, ratios, strict=True):
        acc += r
        if point < acc:
            return name
    return SPLITS[-1]


def split_of(key: str, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    """The split (`train` / `dev` / `test`) of a speaker id; see the module docstring."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError("split_ratios", tuple(ratios), "must be 3 non-negative numbers summing to 1")
    try:
        from speechtok.manifests.splits import split_of as shared_split_of
    except ImportError:
        return _split_of(key, ratios, seed)
    return str(shared_split_of(key, ratios=tuple(ratios), seed=seed))


def split_name_source() -> str:
    """Which split rule `split_of` uses here (for run reports)."""
    try:
        from speechtok.manifests.splits import split_of  # noqa: F401
    except ImportError:
        return "speechtok.trainers.cascade.data._split_of (sha256 of seed:speaker)"
    return "speechtok.manifests.splits.split_of"
