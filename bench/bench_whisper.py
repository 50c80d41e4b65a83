"""Whisper tiny(.en) encoder states, 1 thread: CTranslate2 (real weights) and transformers
(random weights, the same size: d_model 384, 4 layers, 6 heads, FFN 1536).

Audio: speechocean762 utterances (~4 s each). Whisper encodes a full 30 s window whatever the
audio holds, so the cost per cut is nearly constant; two figures per backend:
- ``*.rtf_per_core``: CPU seconds per audio second on 8 speechocean cuts, one window each
  (what a corpus of short cuts costs; log-mel included).
- ``*.rtf_per_core_full_windows``: on 2 full 30 s windows of concatenated cuts (the
  encoder's own real-time factor).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import SHARED, peak_rss_mb, record, set_threads, timed

N_CUTS = 8


def main() -> None:
    set_threads(1)
    import torch
    import transformers as tf

    from speechtok.features.whisper_states import WhisperEncoderStates

    root = SHARED / "data" / "speechocean762-train80"
    lines = [ln for ln in (root / "wav.scp").read_text().split("\n") if ln.strip()]
    waves = [sf.read(root / ln.split()[1], dtype="float32")[0] for ln in lines[: N_CUTS + 30]]
    cuts = waves[:N_CUTS]
    cuts_s = sum(len(w) for w in cuts) / 16000
    long = np.concatenate(waves)[: 2 * 480_000]
    long_s = long.size / 16000

    ct2 = WhisperEncoderStates(SHARED / "models" / "whisper-tiny.en-ct2", threads=1, batch_windows=1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = tf.WhisperConfig(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                               decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                               num_mel_bins=80)
        torch.manual_seed(0)
        tf.WhisperModel(cfg).save_pretrained(Path(tmp) / "whisper")
        hf = WhisperEncoderStates(Path(tmp) / "whisper", batch_windows=1)
    res = {}
    for name, ws in (("whisper_ct2", ct2), ("whisper_hf", hf)):
        ws.extract(cuts[0])  # warm-up
        with timed() as t:
            ws.extract_batch(cuts)
        res[f"{name}.rtf_per_core"] = t.cpu_s / cuts_s
        res[f"{name}.wall_rtf"] = t.wall_s / cuts_s
        with timed() as t:
            ws.extract(long)
        res[f"{name}.rtf_per_core_full_windows"] = t.cpu_s / long_s
    int8 = WhisperEncoderStates(SHARED / "models" / "whisper-tiny.en-ct2", threads=1, compute_type="int8")
    int8.extract(long[:480_000])  # warm-up
    with timed() as t:
        int8.extract(long)
    res["whisper_ct2.rtf_per_core_full_windows_int8"] = t.cpu_s / long_s
    with timed() as t:
        for _ in range(4):
            ct2.log_mel(long[:480_000])
    res["whisper_ct2.logmel_s_per_window"] = t.cpu_s / 4
    notes = {
        "whisper_ct2.rtf_per_core": (f"real tiny.en via CTranslate2 (float32 on CPU), {N_CUTS} speechocean cuts "
                                     f"({cuts_s:.0f} s), one 30 s window per cut, 1 thread"),
        "whisper_ct2.rtf_per_core_full_windows": f"{long_s:.0f} s of concatenated speech in full 30 s windows",
        "whisper_ct2.wall_rtf": "wall clock, shared machine",
        "whisper_ct2.rtf_per_core_full_windows_int8": ("CTranslate2 compute_type=int8 (quantised weights: "
                                                       "different states), full windows"),
        "whisper_ct2.logmel_s_per_window": "CPU s for one 30 s log-mel (faster-whisper numpy STFT)",
        "whisper_hf.rtf_per_core": ("transformers WhisperModel encoder, tiny-sized random weights, same cuts, "
                                    "fp32, 1 thread"),
        "whisper_hf.rtf_per_core_full_windows": "transformers, full 30 s windows",
        "whisper_hf.wall_rtf": f"wall clock (peak RSS {peak_rss_mb():.0f} MiB)",
    }
    record(res, notes)


if __name__ == "__main__":
    main()
