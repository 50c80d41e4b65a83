"""A tiny generated corpus for tests and smoke runs (after lhotse's ``testing/dummies``).

`write_tone_corpus(root, n)` writes ``u{i:03d}``-style 16 kHz PCM wav files of amplitude-
modulated tones plus noise (0.5–1.4 s), each with a ``.txt`` sidecar transcript, which
`speechtok ingest` reads as an audio directory. Deterministic for a seed; no download, no
espeak-ng (the espeak demo corpus is `speechtok.manifests.demo_corpus`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok import atomic


def write_tone_corpus(root: str | Path, n: int = 10, *, seed: int = 0, stem: str = "utt",
                      text: Callable[[int], str] = lambda i: f"utterance number {i}",
                      speakers: int = 0) -> Path:
    """Writes `n` files ``{stem}{i:03d}.wav`` + ``.txt`` into `root`; returns `root`.

    With ``speakers > 0`` file i goes into ``root/spk{i % speakers}/`` instead (ingest it with
    ``speaker_from="top_dir"`` to give every cut a speaker, as the trainers require).

    File i lasts ``0.5 + 0.1 * (i % 10)`` s: a ``150 + 40 i`` Hz tone modulated at 3 Hz
    (amplitude 0.2) plus Gaussian noise (std 0.02); its transcript is ``text(i)`` (an empty
    string writes an empty sidecar: a cut without transcript).
    """

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        num = int(16000 * (0.5 + 0.1 * (i % 10)))
        t = np.arange(num) / 16000
        x = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * np.sin(2 * np.pi * 3 * t)
        x = x + 0.02 * rng.standard_normal(num)
        folder = out / f"spk{i % speakers}" if speakers > 0 else out
        folder.mkdir(exist_ok=True)
        with atomic.atomic_open(folder / f"{stem}{i:03d}.wav", "wb") as fh:
            sf.write(fh, x.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
        label = text(i)
        atomic.write_text(folder / f"{stem}{i:03d}.txt", f"{label}\n" if label else "")
    return out
