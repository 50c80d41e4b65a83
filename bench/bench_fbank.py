"""Fbank: speechtok vs lhotse, end to end (decode + compute + write) and compute only, 1 thread.

Same 200 speechocean762 utterances, same thread count, best of `REPEATS` runs interleaved,
wall and CPU seconds of every side; speedups are on CPU seconds (the machine is shared), the
wall ratios are recorded beside them.

Figures:
- ``fbank.speedup_vs_lhotse_store`` (headline): end to end, lhotse
  `CutSet.compute_and_store_features(Fbank(), storage_type=NumpyFilesWriter, num_jobs=1)` vs
  speechtok's fbank stage path (`stages.audio.load_waves` + `compute_fbank_batch`) writing the
  same `.npy` files with the same `NumpyFilesWriter`. ``fbank.speedup_vs_lhotse_store_batch``:
  against lhotse's batched path `compute_and_store_features_batch(num_workers=0)`.
- ``fbank.speedup_vs_lhotse``: compute only, `compute_fbank_batch` vs lhotse `Fbank.extract`
  per cut (what `compute_and_store_features` calls), same in-memory audio.
- ``fbank.x_realtime_per_core`` (ours), ``fbank.torch_only_x_realtime_per_core`` (without
  numba), ``fbank.lhotse_x_realtime_per_core``, ``fbank.fairseq2_x_realtime_per_core``:
  audio seconds per CPU second, compute only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.common import SHARED, Fig, Timing, best_of, peak_rss_mb, record, set_threads, timed

N_CUTS = 200
REPEATS = 3  # best of: the machine is shared, CPU time still varies with contention
CODE = ["speechtok/features/fbank.py", "speechtok/pipeline/stages/audio.py", "speechtok/pipeline/stages/fbank.py"]


def _cuts(n: int):  # -> lhotse CutSet
    from lhotse import CutSet, Recording

    root = SHARED / "data" / "speechocean762-train80"
    lines = (root / "wav.scp").read_text().split("\n")
    recs = [Recording.from_file(root / line.split()[1], recording_id=line.split()[0])
            for line in lines if line.strip()][:n]
    return CutSet.from_manifests(recordings=__import__("lhotse").RecordingSet.from_recordings(recs))


def _best(fn, repeats: int = REPEATS) -> tuple[float, float]:
    best_cpu, best_wall = float("inf"), float("inf")
    for _ in range(repeats):
        with timed() as t:
            fn()
        best_cpu, best_wall = min(best_cpu, t.cpu_s), min(best_wall, t.wall_s)
    return best_cpu, best_wall


def main() -> None:
    set_threads(1)
    import torch
    from lhotse.features import Fbank
    from lhotse.features.io import NumpyFilesWriter

    from speechtok.features.fbank import FbankConfig, FbankExtractor, _mirror_pad, num_frames

    cuts = _cuts(N_CUTS)
    waves = [c.load_audio()[0].astype(np.float32) for c in cuts]
    audio_s = sum(len(w) for w in waves) / 16000
    cfg = FbankConfig()
    ours = FbankExtractor(cfg)
    plain = FbankExtractor(cfg, jit=False)
    ref = Fbank(cfg.to_lhotse())
    try:
        from fairseq2.data.audio import WaveformToFbankConverter

        conv = WaveformToFbankConverter(num_mel_bins=80, waveform_scale=1.0, channel_last=True,
                                        standardize=False, dtype=torch.float32)
    except (ImportError, OSError) as exc:  # fairseq2n needs oneTBB; not a peer we rely on
        print(f"  fairseq2 unavailable, its figure is retired for this run: {exc}")
        conv = None

    def fs2() -> None:
        for w in waves:  # pre-padded as lhotse frames it (fairseq2 snips edges)
            t = num_frames(len(w), cfg)
            x = _mirror_pad(w, 120, max((t - 1) * 160 + 400 - len(w) - 120, 0))
            conv({"waveform": torch.from_numpy(x).unsqueeze(1), "sample_rate": 16000.0})

    ours.extract_batch(waves[:4], 16000)  # warm-up (compiles the numba kernel)
    plain.extract_batch(waves[:4], 16000)
    cpu_l = cpu_o = cpu_f = wall_o = cpu_p = float("inf")
    for _ in range(REPEATS):  # interleaved, best of each: contention drifts during the run
        cpu, _ = _best(lambda: [ref.extract(w, 16000) for w in waves], 1)
        cpu_l = min(cpu_l, cpu)
        cpu, wall = _best(lambda: ours.extract_batch(waves, 16000), 1)
        cpu_o, wall_o = min(cpu_o, cpu), min(wall_o, wall)
        if conv is not None:
            cpu, _ = _best(fs2, 1)
            cpu_f = min(cpu_f, cpu)
        cpu, _ = _best(lambda: plain.extract_batch(waves, 16000), 1)
        cpu_p = min(cpu_p, cpu)

    from speechtok.features.fbank import compute_fbank_batch
    from speechtok.pipeline.stage import CutItem
    from speechtok.pipeline.stages.audio import load_waves

    items = [CutItem(id=c.id, cut=c) for c in cuts]

    def ours_store(tmp: str) -> None:
        with NumpyFilesWriter(tmp) as w:
            for s in range(0, len(items), 50):  # the stage's batches
                out, slots, waves = load_waves(items[s : s + 50], 16000)
                feats = compute_fbank_batch(waves, 16000, cfg)
                for slot, f in zip(slots, feats, strict=True):
                    w.write(str(out[slot]["id"]), f)  # type: ignore[index]

    def lhotse_store(tmp: str) -> None:
        cuts.compute_and_store_features(Fbank(cfg.to_lhotse()), tmp, num_jobs=1,
                                        storage_type=NumpyFilesWriter, progress_bar=False)

    def lhotse_batch(tmp: str) -> None:
        cuts.compute_and_store_features_batch(Fbank(cfg.to_lhotse()), tmp, num_workers=0,
                                              storage_type=NumpyFilesWriter)

    store: dict[str, list[Timing]] = {"lhotse": [], "lhotse_batch": [], "ours": []}
    for _ in range(REPEATS):  # interleaved
        for name, fn in (("lhotse", lhotse_store), ("lhotse_batch", lhotse_batch), ("ours", ours_store)):
            with tempfile.TemporaryDirectory() as tmp, timed() as t:
                fn(str(Path(tmp) / "feats"))
            store[name].append(t)
    st = {k: best_of(v) for k, v in store.items()}
    print("  store:", {k: (round(v.cpu_s, 2), round(v.wall_s, 2)) for k, v in st.items()})
    compute = Timing(cpu_s=cpu_o, wall_s=wall_o)

    figures: dict[str, float | Fig] = {
        "fbank.lhotse_store_cpu_s": Fig(st["lhotse"].cpu_s, timing=st["lhotse"]),
        "fbank.lhotse_store_wall_s": Fig(st["lhotse"].wall_s, timing=st["lhotse"]),
        "fbank.lhotse_store_batch_cpu_s": Fig(st["lhotse_batch"].cpu_s, timing=st["lhotse_batch"]),
        "fbank.store_cpu_s": Fig(st["ours"].cpu_s, timing=st["ours"]),
        "fbank.store_wall_s": Fig(st["ours"].wall_s, timing=st["ours"]),
        "fbank.speedup_vs_lhotse_store": Fig(st["lhotse"].cpu_s / st["ours"].cpu_s, timing=st["ours"],
                                             peers=["fbank.lhotse_store_cpu_s"]),
        "fbank.speedup_vs_lhotse_store_wall": Fig(st["lhotse"].wall_s / st["ours"].wall_s, timing=st["ours"],
                                                  peers=["fbank.lhotse_store_wall_s"]),
        "fbank.speedup_vs_lhotse_store_batch": Fig(st["lhotse_batch"].cpu_s / st["ours"].cpu_s,
                                                   timing=st["ours"], peers=["fbank.lhotse_store_batch_cpu_s"]),
        "fbank.lhotse_x_realtime_per_core": audio_s / cpu_l,
        "fbank.speedup_vs_lhotse": Fig(cpu_l / cpu_o, timing=compute, peers=["fbank.lhotse_x_realtime_per_core"]),
        "fbank.x_realtime_per_core": Fig(audio_s / cpu_o, timing=compute),
        "fbank.torch_only_x_realtime_per_core": audio_s / cpu_p,
        "fbank.wall_x_realtime": Fig(audio_s / wall_o, timing=compute),
    }
    notes = {
        "fbank.speedup_vs_lhotse_store": (
            f"CPU s end to end (FLAC decode + fbank + .npy write, NumpyFilesWriter both), "
            f"{N_CUTS} speechocean762 cuts ({audio_s:.0f} s audio), 1 thread, best of {REPEATS} interleaved: "
            f"lhotse compute_and_store_features(num_jobs=1) / speechtok fbank stage path"),
        "fbank.speedup_vs_lhotse_store_wall": "the same on wall time (shared machine: see load)",
        "fbank.speedup_vs_lhotse_store_batch": ("against lhotse compute_and_store_features_batch(num_workers=0), "
                                                "same writer"),
        "fbank.speedup_vs_lhotse": (f"compute only, in-memory audio, CPU s, best of {REPEATS} interleaved: "
                                    f"lhotse Fbank.extract per cut / compute_fbank_batch"),
        "fbank.x_realtime_per_core": ("audio-s per CPU-s, compute only: numba framing + MKL FFT + "
                                      "block-sparse mel matmul + numpy log"),
        "fbank.torch_only_x_realtime_per_core": "the same path without numba (torch framing ops)",
        "fbank.lhotse_x_realtime_per_core": "lhotse Fbank.extract per cut (the reference)",
        "fbank.fairseq2_x_realtime_per_core": ("fairseq2 WaveformToFbankConverter on pre-padded audio; "
                                               "its mel banks differ from lhotse's, so not used"),
        "fbank.wall_x_realtime": (f"compute only, wall clock (machine shared with other jobs; "
                                  f"peak RSS {peak_rss_mb():.0f} MiB)"),
    }
    if conv is not None:
        figures["fbank.fairseq2_x_realtime_per_core"] = audio_s / cpu_f
    record(figures, notes, retire=["fbank.fairseq2_x_realtime_per_core"],
           settings={"cuts": N_CUTS, "audio_s": round(audio_s, 1), "repeats": REPEATS,
                                     "writer": "lhotse NumpyFilesWriter"}, threads=1, code=CODE)


if __name__ == "__main__":
    main()
