"""Unit quality on real features: Whisper tiny.en encoder states over FSDD -> k-means -> report.

Features: the CTranslate2 Whisper tiny.en encoder (`../shared/models/whisper-tiny.en-ct2`),
384-dim states at 50 Hz. FSDD clips (8 kHz, ~0.4 s each) are resampled to 16 kHz and packed,
0.2 s apart, into 30 s windows, so that 3,000 clips need ~70 encoder calls instead of 3,000;
each clip's states are the frames its samples cover. Packing costs some quality (absolute
position and neighbouring clips leak into the states; see `encoder_states`), so the FSDD figures
are a lower bound. speechocean762 (150 utterances, each in its own window as Whisper is normally
run): phone labels from pocketsphinx forced alignment -> phone purity, cluster purity, PNMI.

Units: `fit_kmeans` (K=100, 20 iterations) on all frames, then the probe of
`speechtok.tokenizers.unit_report`: logistic regression on bag-of-units histograms, digit from
the file name, speaker-disjoint split (2 of 6 speakers held out), against units redrawn at
random with the same usage distribution. The report (markdown + PNG) goes to
`bench/results/units_fsdd/`.

Run: `.venv/bin/python -m bench.bench_units` (needs ../shared; skips clearly without it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from bench.common import BENCH_DIR, SHARED, record, set_threads, timed

SR = 16000
WINDOW = 30 * SR
GAP = int(0.2 * SR)
HOP = 320  # encoder frame = 20 ms
K = 100


def load_fsdd(audio_dir: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """16 kHz clips, digit labels and speakers of every FSDD file, in sorted order."""
    import soundfile as sf
    import torch
    import torchaudio

    waves, digits, speakers = [], [], []
    for path in sorted(audio_dir.glob("*.flac")):
        digit, speaker, _ = path.stem.split("_")
        x, sr = sf.read(path, dtype="float32", always_2d=False)
        if x.ndim > 1:
            x = x.mean(axis=1)
        y = torchaudio.functional.resample(torch.from_numpy(x), sr, SR).numpy()
        waves.append(y[: WINDOW - GAP])
        digits.append(digit)
        speakers.append(speaker)
    return waves, digits, speakers


def encoder_states(
    waves: list[np.ndarray], model_dir: Path, batch: int = 4, pack: bool = True
) -> list[np.ndarray]:
    """Whisper encoder states `(T_i, 384)` float16 per clip.

    `pack=True` packs clips 0.2 s apart into 30 s windows (cheap: FSDD); `pack=False` gives every
    clip its own window starting at 0, as Whisper is normally run. Packing costs phonetic
    quality (PNMI 0.24 packed vs 0.31 alone, 80 speechocean utterances, K=50): the states
    carry absolute position and context from neighbouring clips.
    """
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    model = ctranslate2.models.Whisper(str(model_dir), device="cpu", intra_threads=1)
    fe = FeatureExtractor(feature_size=80)
    windows: list[list[tuple[int, int, int]]] = [[]]  # per window: (clip, start, length)
    pos = 0
    for i, w in enumerate(waves):
        if pos + len(w) > WINDOW or (not pack and windows[-1]):
            windows.append([])
            pos = 0
        windows[-1].append((i, pos, len(w)))
        pos += len(w) + GAP
    out: list[np.ndarray | None] = [None] * len(waves)
    for b in range(0, len(windows), batch):
        group = windows[b : b + batch]
        mels = []
        for win in group:
            audio = np.zeros(WINDOW, np.float32)
            for i, start, n in win:
                audio[start : start + n] = waves[i]
            mels.append(fe(audio)[:, :3000])  # (80, 3000)
        feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(mels), np.float32))
        states = np.asarray(model.encode(feats, to_cpu=True))  # (B, 1500, 384)
        for win, st in zip(group, states, strict=True):
            for i, start, n in win:
                lo, hi = start // HOP, -(-(start + n) // HOP)
                out[i] = st[lo:hi].astype(np.float16)
    return [o for o in out if o is not None]


def phone_alignments(so_dir: Path, limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """16 kHz waves and 100 Hz phone labels of `limit` speechocean762 utterances.

    Labels come from pocketsphinx forced alignment of the reference text (en-us model);
    utterances it cannot align (out-of-vocabulary words, failed search) are skipped.
    """
    import soundfile as sf
    from pocketsphinx import Decoder

    texts = dict(line.split(maxsplit=1) for line in (so_dir / "text").read_text().splitlines())
    wavs = dict(line.split(maxsplit=1) for line in (so_dir / "wav.scp").read_text().splitlines())
    decoder = Decoder(samprate=SR, loglevel="FATAL", bestpath=False)
    waves, labels = [], []
    for utt in sorted(wavs)[:: max(1, len(wavs) // limit)][:limit]:
        x, sr = sf.read(so_dir / wavs[utt].strip(), dtype="int16")
        if sr != SR or x.ndim != 1 or len(x) > WINDOW - GAP:
            continue
        try:
            decoder.set_align_text(texts[utt].strip().lower())
            for _ in range(2):  # word search, then phone alignment
                decoder.start_utt()
                decoder.process_raw(x.tobytes(), full_utt=True)
                decoder.end_utt()
                if _ == 0:
                    decoder.set_alignment()
            lab = np.full(len(x) // 160 + 1, "", dtype=object)
            for word in decoder.get_alignment():
                for ph in word:
                    lab[ph.start : ph.start + ph.duration] = ph.name
        except (RuntimeError, KeyError):
            continue
        waves.append(x.astype(np.float32) / 32768.0)
        labels.append(lab.astype(str))
    return waves, labels


def speechocean_pnmi(model_dir: Path) -> dict[str, float] | None:
    """Phone purity / PNMI of K=100 units on Whisper states of aligned speechocean762 speech."""
    from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
    from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource
    from speechtok.tokenizers.unit_report import label_metrics
    from speechtok.tokenizers.units import encode_units

    so_dir = SHARED / "data" / "speechocean762-train80"
    if not so_dir.is_dir():
        return None
    limit = int(os.environ.get("BENCH_UNITS_SO_UTTS", "150"))
    with timed() as t_al:
        waves, phones = phone_alignments(so_dir, limit)
    print(f"bench_units: {len(waves)} speechocean utterances aligned in {t_al.cpu_s:.0f} cpu-s")
    feats = encoder_states(waves, model_dir, pack=False)  # one 30 s window per utterance
    model = fit_kmeans(ArrayFrameSource(feats), KMeansConfig(k=K, iterations=20, frame_budget=500_000))
    units = [u.units for u in encode_units(model, feats)]
    # phone of each 20 ms unit frame = the 10 ms label at its centre
    frame_labels = [p[np.minimum(2 * np.arange(len(u)) + 1, len(p) - 1)] for u, p in zip(units, phones, strict=True)]
    pp, cp, pnmi, n = label_metrics(units, frame_labels)
    rng = np.random.default_rng(0)
    counts = np.bincount(np.concatenate(units), minlength=K)
    rand = [rng.choice(K, size=len(u), p=counts / counts.sum()) for u in units]
    _, _, pnmi_rand, _ = label_metrics(rand, frame_labels)
    print(f"  speechocean: {n} frames, phone purity {pp:.3f}, cluster purity {cp:.3f}, "
          f"PNMI {pnmi:.3f} (random units {pnmi_rand:.3f})")
    return {"units.speechocean_phone_purity": pp, "units.speechocean_cluster_purity": cp,
            "units.speechocean_pnmi": pnmi, "units.speechocean_pnmi_random": pnmi_rand,
            "_utts": float(len(waves)), "_frames": float(n)}


def main() -> None:
    from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
    from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource
    from speechtok.tokenizers.unit_report import unit_report, write_report
    from speechtok.tokenizers.units import encode_units

    audio_dir = SHARED / "data" / "fsdd" / "audio"
    model_dir = SHARED / "models" / "whisper-tiny.en-ct2"
    if not audio_dir.is_dir() or not model_dir.is_dir():
        print(f"bench_units: skipped, needs {audio_dir} and {model_dir}")
        return
    set_threads(int(os.environ.get("BENCH_THREADS", "1")))
    stride = int(os.environ.get("BENCH_UNITS_STRIDE", "1"))  # >1: a smoke run on every n-th clip
    waves, digits, speakers = load_fsdd(audio_dir)
    waves, digits, speakers = waves[::stride], digits[::stride], speakers[::stride]
    with timed() as t_feat:
        feats = encoder_states(waves, model_dir)
    n_frames = sum(len(f) for f in feats)
    print(f"bench_units: {len(feats)} clips, {n_frames} frames; encoder {t_feat.cpu_s:.0f} cpu-s")
    with timed() as t_km:
        model = fit_kmeans(ArrayFrameSource(feats), KMeansConfig(k=K, iterations=20, frame_budget=500_000))
    units = [u.units for u in encode_units(model, feats)]
    rep = unit_report(units, K, frame_rate=50.0, utterance_labels=digits, utterance_groups=speakers)
    md = write_report(rep, BENCH_DIR / "results" / "units_fsdd",
                      title=f"Unit quality: Whisper tiny.en encoder states, FSDD, k-means K={K}")
    print(md.read_text())
    figures = {
        "units.fsdd_probe_acc": float(rep.probe_accuracy or 0.0),
        "units.fsdd_probe_acc_random": float(rep.probe_accuracy_random or 0.0),
        "units.fsdd_dedup_ratio": rep.dedup_ratio,
        "units.fsdd_perplexity": rep.perplexity,
    }
    so = speechocean_pnmi(model_dir)
    if stride > 1:
        print(figures, so)
        return
    held = ", ".join(rep.probe_test_groups or [])
    notes = {}
    if so is not None:
        utts, frames = int(so.pop("_utts")), int(so.pop("_frames"))
        figures.update(so)
        where = (f"{utts} speechocean762 utterances ({frames} frames), phones by pocketsphinx forced alignment, "
                 f"K={K} units fit on them")
        notes = {"units.speechocean_pnmi": f"PNMI (HuBERT def.), {where}",
                 "units.speechocean_phone_purity": f"phone purity, {where}",
                 "units.speechocean_cluster_purity": f"cluster purity, {where}",
                 "units.speechocean_pnmi_random": "PNMI of units redrawn at random (same usage)"}
    record(figures, notes={**notes,
        "units.fsdd_probe_acc": (f"digit from bag of K={K} units, Whisper tiny.en layer-final states, "
                                 f"test speakers {held}; chance 0.1"),
        "units.fsdd_probe_acc_random": "same probe, units redrawn i.i.d. from the same usage distribution",
        "units.fsdd_dedup_ratio": "units after run-length dedup / before (50 Hz frames)",
        "units.fsdd_perplexity": f"perplexity of unit usage (of K={K}); k-means fit {t_km.cpu_s:.0f} cpu-s",
    })


if __name__ == "__main__":
    sys.exit(main())
