"""The embedded default corpus: espeak-ng speaking generated English sentences, offline.

Layout of `out_dir`::

    out_dir/<speaker>/<speaker>_<index:04d>.wav   16 kHz mono PCM-16
    out_dir/<speaker>/<speaker>_<index:04d>.txt   the exact text spoken (lower case, no punct.)
    out_dir/manifest.jsonl                         {"id","audio","text","speaker","language"}
    out_dir/corpus.json                            parameters; a rerun with the same ones is a no-op

A speaker is an espeak-ng voice (+ variant), e.g. ``en-us_f3``; utterance `i` uses voice
``i % len(voices)`` and a speaking rate drawn from `speeds` by a seeded RNG, so the corpus is
byte-identical for the same parameters and espeak-ng version. Ingest it with
``ingest(out_dir, out, speaker_from="top_dir")`` or ``ingest(out_dir / "manifest.jsonl", out)``.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from speechtok import atomic
from speechtok.errors import ConfigError, SpeechtokError, check_at_least
from speechtok.manifests.demo_text import make_sentences

#: espeak-ng voices (language + variant): American, British, Scottish, Caribbean, RP accents,
#: female and male variants.
DEFAULT_VOICES: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-us+f3",
    "en-gb+f4",
    "en-gb-scotland",
    "en-029+m3",
    "en-gb-x-rp+f2",
    "en-us+m7",
)
DEFAULT_SPEEDS: tuple[int, ...] = (130, 150, 165, 180, 195)
#: Default size for `speechtok demo` (about 10 minutes of speech).
DEFAULT_N = 240
#: Size used by tests.
SMALL_N = 16
SAMPLE_RATE = 16000
#: Bump when the text generator or layout changes (invalidates existing corpora).
CORPUS_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class DemoCorpusConfig:
    """Parameters of the generated corpus (all of them go into ``corpus.json``)."""

    n: int = DEFAULT_N
    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES
    speeds: tuple[int, ...] = DEFAULT_SPEEDS
    sample_rate: int = SAMPLE_RATE

    def validate(self) -> None:
        check_at_least(1, n=self.n)
        if not self.voices:
            raise ConfigError("voices", self.voices, "must name at least one espeak-ng voice")
        if not self.speeds or any(not 80 <= s <= 450 for s in self.speeds):
            raise ConfigError("speeds", self.speeds, "must be words-per-minute values in [80, 450]")
        if self.sample_rate < 8000:
            raise ConfigError("sample_rate", self.sample_rate, "must be >= 8000")


def speaker_name(voice: str) -> str:
    """File-system-safe speaker label of a voice: ``en-us+f3`` -> ``en-us_f3``."""
    return voice.replace("+", "_")


def espeak_binary() -> str:
    """Path of espeak-ng, or a `SpeechtokError` saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechtokError(
            "espeak-ng is not installed; the demo corpus needs it: run `make setup` "
            "(or `apt-get install espeak-ng`)"
        )
    return exe


def synthesize(text: str, voice: str, speed: int, sample_rate: int = SAMPLE_RATE, exe: str | None = None) -> np.ndarray:
    """Speaks `text` with espeak-ng; returns float32 mono samples of shape (S,) at `sample_rate`."""
    exe = exe or espeak_binary()
    proc = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0 or len(proc.stdout) < 64:
        raise SpeechtokError(
            f"espeak-ng failed for voice {voice!r} (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}; check `espeak-ng --voices=en`"
        )
    wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")  # (S,) at espeak's 22050 Hz
    if sr != sample_rate:
        g = gcd(sample_rate, int(sr))
        wav = resample_poly(wav, sample_rate // g, int(sr) // g).astype(np.float32)
    return np.clip(wav, -1.0, 1.0)


def _plan(cfg: DemoCorpusConfig) -> list[dict[str, object]]:
    rng = random.Random(cfg.seed)
    out: list[dict[str, object]] = []
    per_speaker: dict[str, int] = {}
    for i, text in enumerate(make_sentences(cfg.n, cfg.seed)):
        voice = cfg.voices[i % len(cfg.voices)]
        spk = speaker_name(voice)
        idx = per_speaker.get(spk, 0)
        per_speaker[spk] = idx + 1
        uid = f"{spk}_{idx:04d}"
        out.append(
            {"id": uid, "voice": voice, "speaker": spk, "speed": rng.choice(cfg.speeds), "text": text,
             "rel": f"{spk}/{uid}"}
        )
    return out


def build_demo_corpus(
    out_dir: str | Path,
    n: int = DEFAULT_N,
    *,
    seed: int = 0,
    voices: Sequence[str] = DEFAULT_VOICES,
    speeds: Sequence[int] = DEFAULT_SPEEDS,
    workers: int | None = None,
) -> Path:
    """Generates (or reuses) the espeak-ng demo corpus in `out_dir` and returns `out_dir`.

    Args:
        out_dir: corpus directory (created).
        n: number of utterances (`DEFAULT_N` for the demo, `SMALL_N` for tests).
        seed: sentence and speed choice.
        voices: espeak-ng voices; each is one speaker.
        speeds: speaking rates in words per minute.
        workers: parallel espeak-ng processes (default: min(4, CPUs)).
    """
    cfg = DemoCorpusConfig(n=n, seed=seed, voices=tuple(voices), speeds=tuple(speeds))
    cfg.validate()
    out = Path(out_dir)
    stamp = out / "corpus.json"
    exe = espeak_binary()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    meta = {"version": CORPUS_VERSION, "config": asdict(cfg), "espeak_ng": version}
    if stamp.exists() and json.loads(stamp.read_text()) == json.loads(json.dumps(meta)):
        return out
    out.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    plan = _plan(cfg)

    def make(entry: dict[str, object]) -> None:
        wav = synthesize(str(entry["text"]), str(entry["voice"]), int(str(entry["speed"])), cfg.sample_rate, exe)
        base = out / str(entry["rel"])
        base.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_open(str(base) + ".wav", "wb") as fh:
            sf.write(fh, wav, cfg.sample_rate, format="WAV", subtype="PCM_16")
        atomic.write_text(str(base) + ".txt", str(entry["text"]) + "\n")

    n_workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(make, plan))
    with atomic.atomic_open(out / "manifest.jsonl", "w") as fh:
        for e in plan:
            fh.write(
                json.dumps(
                    {
                        "id": e["id"],
                        "audio": f"{e['rel']}.wav",
                        "text": e["text"],
                        "speaker": e["speaker"],
                        "language": "en",
                    }
                )
                + "\n"
            )
    atomic.write_text(stamp, json.dumps(meta, indent=2) + "\n")
    return out
