"""Mimi and X-Codec (transformers) on real speech, 1 thread: real-time factor per core of
speechtok's codec wrappers, at tiny and at the released sizes, with random weights (speed does
not depend on weight values; the real weights are not reachable here).

Models: `speechtok.tokenizers.acoustic.hf_testing.save_random_model(kind, dir, size)`, saved with
``save_pretrained`` and loaded through the same path as a released checkpoint. Audio: the first
utterances of speechocean762-train80 (resampled with lhotse to 24 kHz for Mimi, 16 kHz native for
X-Codec). Side by side in one run, at the released size:
- naive: the transformers model card's loop, one ``model.encode(x)`` per file under
  ``torch.no_grad()`` (Mimi: all 32 codebooks in one unchunked call; X-Codec: all 8);
- speechtok: ``tokenizer.encode_batch(waves, sr)`` (Mimi streamed in 10 s steps with its caches,
  X-Codec in one piece per cut, exact-length buckets, inference mode), all codebooks.
RTF per core = CPU seconds (1 thread) / audio seconds. Decoding is timed too.

Env: ``BENCH_HFCODECS_SECONDS`` (default 20) seconds of audio.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.bench_codecs import _resample, _speechocean
from bench.common import Fig, peak_rss_mb, record, set_threads, timed

SECONDS = float(os.environ.get("BENCH_HFCODECS_SECONDS", "20"))
CODE = ["speechtok/tokenizers/acoustic/mimi_codec.py", "speechtok/tokenizers/acoustic/xcodec_codec.py",
        "speechtok/tokenizers/acoustic/hf_local.py", "speechtok/tokenizers/acoustic/hf_testing.py"]


def bench_kind(kind: str, waves16: list[np.ndarray], tmp: Path) -> tuple[dict[str, float | Fig], dict[str, str]]:
    from speechtok.tokenizers.acoustic import build_tokenizer
    from speechtok.tokenizers.acoustic.hf_testing import save_random_model
    from speechtok.tokenizers.acoustic.mimi_codec import MimiCodecConfig
    from speechtok.tokenizers.acoustic.xcodec_codec import XcodecCodecConfig

    sr = 24_000 if kind == "mimi" else 16_000
    waves = _resample(waves16, 16_000, sr)
    audio_s = sum(len(w) for w in waves) / sr
    figs: dict[str, float | Fig] = {}
    notes: dict[str, str] = {}
    for size in ("tiny", "released"):
        d = save_random_model(kind, tmp / f"{kind}_{size}", size=size)  # type: ignore[arg-type]
        cfg = (MimiCodecConfig(model_dir=str(d)) if kind == "mimi"
               else XcodecCodecConfig(model_dir=str(d)))
        tok = build_tokenizer(cfg)
        tok.encode_batch([waves[0][: sr // 2]], sr)  # warm-up
        with timed() as t:
            codes = tok.encode_batch(waves, sr)
        suffix = "" if size == "released" else "_tiny"
        figs[f"{kind}.rtf_per_core{suffix}"] = Fig(t.cpu_s / audio_s, timing=t,
                                                   settings={"size": size, "audio_s": round(audio_s, 1)})
        notes[f"{kind}.rtf_per_core{suffix}"] = (
            f"CPU s per audio s, encode, {size} size, random weights, {tok.info.num_codebooks} "
            f"codebooks, {tok.info.frame_rate:g} Hz")
        if size == "released":
            n = max(1, len(codes) // 4)
            dec_s = sum(len(c) for c in codes[:n]) / tok.info.frame_rate
            with timed() as td:
                for c in codes[:n]:
                    tok.decode(c)
            figs[f"{kind}.decode_rtf_per_core"] = Fig(td.cpu_s / dec_s, timing=td,
                                                      settings={"size": size, "audio_s": round(dec_s, 1)})
            notes[f"{kind}.decode_rtf_per_core"] = "CPU s per audio s, decode, released size"
            model = tok.model
            with timed() as tn, torch.no_grad():
                for w in waves:
                    model.encode(torch.from_numpy(w)[None, None])
            figs[f"{kind}.rtf_per_core_naive"] = Fig(tn.cpu_s / audio_s, timing=tn,
                                                     settings={"size": size})
            notes[f"{kind}.rtf_per_core_naive"] = "the model card's per-file model.encode loop, no_grad"
            figs[f"{kind}.speedup_vs_naive"] = Fig(tn.cpu_s / t.cpu_s, timing=t,
                                                   peers=[f"{kind}.rtf_per_core_naive",
                                                          f"{kind}.rtf_per_core"])
            figs[f"{kind}.params_m"] = Fig(sum(p.numel() for p in model.parameters()) / 1e6, unit="M")
        del tok
    return figs, notes


def main() -> None:
    set_threads(1)
    warnings.filterwarnings("ignore")
    waves16 = _speechocean(SECONDS)
    figures: dict[str, float | Fig] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("mimi", "xcodec"):
            f, n = bench_kind(kind, waves16, Path(tmp))
            figures.update(f)
            notes.update(n)
    figures["hfcodecs.peak_rss_mb"] = Fig(peak_rss_mb(), unit="MiB")
    record(figures, notes, settings={"corpus": "speechocean762-train80", "seconds": SECONDS},
           code=CODE)


if __name__ == "__main__":
    main()
