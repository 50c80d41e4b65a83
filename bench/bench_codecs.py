"""Acoustic codecs on real speech, 1 thread: speed against the codecs' own per-file loops and the
FLOP floor (EnCodec 24 kHz @ 6 kbps, DAC 16 kHz and 44.1 kHz), and Lyra v2 reconstruction.

Speed: full-size architectures with random weights (speed does not depend on weight values),
saved in each codec's official format and loaded through speechtok's path. Audio: the first
utterances of speechocean762 (resampled with lhotse). For every codec, side by side in one run:
- naive baseline (headline ``codecs.<codec>.speedup_vs_nograd_loop``): the package's per-file
  loop under ``torch.no_grad()``: EnCodec ``model.encode(x)``, DAC
  ``model.encode(model.preprocess(x, sr))``. Also measured for DAC: the README loop exactly as
  written (autograd on, ``speedup_vs_readme_loop``) and ``model.compress(signal)`` (its
  documented file API: 1 s windows, loudness normalisation).
- speechtok: ``tokenizer.encode_batch(waves, sr)`` (exact-length buckets, weight norm folded,
  inference mode).
Every path best of `REPEATS` runs interleaved, CPU and wall seconds; speedups on CPU seconds
(1 thread) / audio seconds = RTF per core. The floor is the FLOPs of one audio second (counted
by ``torch.utils.flop_counter``) / the float32 matmul rate measured in this run
(``codecs.floor_sgemm_gflops_1t``, `bench.floors`).

Lyra v2 (real weights): SI-SDR, STOI, mel distance and bitrate at 8, 16 and 46 codebooks on
speechocean762 and FSDD (8 kHz, upsampled to 16 kHz).

Env: ``BENCH_CODECS_SCALE`` (default 1.0) scales the amount of audio.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from bench.common import SHARED, Fig, Timing, best_of, peak_rss_mb, record, set_threads, timed

REPEATS = 2
FLOOR = "codecs.floor_sgemm_gflops_1t"
CODE = ["speechtok/tokenizers/acoustic/encodec_codec.py", "speechtok/tokenizers/acoustic/dac_codec.py",
        "bench/floors.py"]
SCALE = float(os.environ.get("BENCH_CODECS_SCALE", "1.0"))


def _speechocean(seconds: float) -> list[np.ndarray]:
    root = SHARED / "data" / "speechocean762-train80"
    out, total = [], 0.0
    for line in (root / "wav.scp").read_text().splitlines():
        w, sr = sf.read(root / line.split()[1], dtype="float32")
        out.append(w)
        total += len(w) / sr
        if total >= seconds:
            break
    return out


def _resample(waves: list[np.ndarray], src: int, dst: int) -> list[np.ndarray]:
    if src == dst:
        return waves
    from lhotse.augmentation import Resample

    rs = Resample(src, dst)
    return [rs(w[None])[0].astype(np.float32) for w in waves]


def _gflop_per_second(fn: Any, sr: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn(torch.randn(1, 1, sr))
    return fc.get_total_flops() / 1e9


def _frames_equal(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    eq = [np.asarray(x).astype(np.int64) == np.asarray(y).astype(np.int64) for x, y in zip(a, b, strict=True)]
    return float(np.mean(np.concatenate([e.all(axis=1) for e in eq])))


def _interleaved(paths: dict[str, Any]) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Runs every path `REPEATS` times interleaved; best timing and last output of each."""
    runs: dict[str, list[Timing]] = {k: [] for k in paths}
    outs: dict[str, Any] = {}
    for _ in range(REPEATS):
        for name, fn in paths.items():
            with timed() as t:
                outs[name] = fn()
            runs[name].append(t)
    return {k: best_of(v) for k, v in runs.items()}, outs


def _speed_figs(tag: str, secs: float, t: dict[str, Timing], gflop: float, floor_gflops: float,
                equal: float) -> dict[str, float | Fig]:
    pre = f"codecs.{tag}"
    figs: dict[str, float | Fig] = {
        f"{pre}.nograd_loop_cpu_s": Fig(t["nograd"].cpu_s, timing=t["nograd"]),
        f"{pre}.encode_batch_cpu_s": Fig(t["ours"].cpu_s, timing=t["ours"]),
        f"{pre}.speedup_vs_nograd_loop": Fig(t["nograd"].cpu_s / t["ours"].cpu_s, timing=t["ours"],
                                             peers=[f"{pre}.nograd_loop_cpu_s"]),
        f"{pre}.rtf_per_core": Fig(t["ours"].cpu_s / secs, unit="CPU s / audio s", timing=t["ours"]),
        f"{pre}.rtf_per_core_nograd_loop": Fig(t["nograd"].cpu_s / secs, unit="CPU s / audio s", timing=t["nograd"]),
        f"{pre}.gflop_per_audio_s": Fig(gflop, unit="GFLOP"),
        f"{pre}.rtf_floor": Fig(gflop / floor_gflops, unit="CPU s / audio s", peers=[FLOOR]),
        f"{pre}.time_over_floor": Fig(t["ours"].cpu_s / secs / (gflop / floor_gflops), timing=t["ours"], peers=[FLOOR]),
        f"{pre}.codes_equal_naive": Fig(equal, unit="fraction"),
    }
    return figs


def bench_encodec(waves16: list[np.ndarray], tmp: Path, floor: float) -> tuple[dict[str, float | Fig], dict[str, str]]:
    from encodec.model import EncodecModel

    from speechtok.tokenizers.acoustic.encodec_codec import (
        EncodecConfig,
        EncodecTokenizer,
        randomize_codebooks,
    )

    waves = _resample(waves16, 16_000, 24_000)
    secs = sum(len(w) for w in waves) / 24_000
    torch.manual_seed(0)
    model = EncodecModel.encodec_model_24khz(pretrained=False)
    # untrained codebooks are all zero (every code would be 0): draw them from encoder output
    randomize_codebooks(model, torch.from_numpy(np.concatenate(waves[-3:]))[None, None])
    torch.save(model.state_dict(), tmp / "encodec_24khz.th")
    model.set_target_bandwidth(6.0)
    tok = EncodecTokenizer(EncodecConfig(checkpoint=str(tmp / "encodec_24khz.th"), bandwidth=6.0))
    tok.encode_batch(waves[:1], 24_000)  # warm-up both paths
    with torch.no_grad():
        model.encode(torch.from_numpy(waves[0])[None, None])

    def nograd() -> list[np.ndarray]:
        out = []
        for w in waves:
            with torch.no_grad():
                frames = model.encode(torch.from_numpy(w)[None, None])
            out.append(frames[0][0][0].T.numpy())
        return out

    t, outs = _interleaved({"nograd": nograd, "ours": lambda: tok.encode_batch(waves, 24_000)})
    gflop = _gflop_per_second(lambda x: model.encode(x), 24_000)
    figs = _speed_figs("encodec", secs, t, gflop, floor, _frames_equal(outs["ours"], outs["nograd"]))
    notes = {
        "codecs.encodec.speedup_vs_nograd_loop": (
            f"CPU s of no_grad model.encode per file / encode_batch, best of {REPEATS} interleaved; "
            f"{secs:.0f} s speech, 24 kHz @ 6 kbps, full-size random weights, 1 thread"),
        "codecs.encodec.rtf_per_core": "CPU s per audio s of encode_batch",
        "codecs.encodec.rtf_floor": "FLOPs per audio s / the sgemm rate measured in this run",
        "codecs.encodec.codes_equal_naive": "fraction of frames whose codes equal the package's model.encode",
    }
    return figs, notes


def _dac_model(kind: str) -> tuple[Any, int]:
    import dac

    from speechtok.tokenizers.acoustic.dac_codec import RELEASED_KWARGS

    torch.manual_seed(0)
    kw = RELEASED_KWARGS[kind]
    return dac.DAC(**kw), int(kw["sample_rate"])


def bench_dac(kind: str, tag: str, waves16: list[np.ndarray], tmp: Path,
              floor: float) -> tuple[dict[str, float | Fig], dict[str, str]]:
    from audiotools import AudioSignal

    from speechtok.tokenizers.acoustic.dac_codec import DacConfig, DacTokenizer

    model, sr = _dac_model(kind)
    path = tmp / f"dac_{kind}.pth"
    model.save(str(path), package=False)
    model.eval()
    tok = DacTokenizer(DacConfig(model=kind, checkpoint=str(path)))  # type: ignore[arg-type]
    waves = _resample(waves16, 16_000, sr)
    secs = sum(len(w) for w in waves) / sr
    short = waves[0][: sr // 2]
    tok.encode_batch([short], sr)  # warm-up
    model.encode(model.preprocess(torch.from_numpy(short)[None, None], sr))

    def readme() -> list[np.ndarray]:  # README: no no_grad
        return [model.encode(model.preprocess(torch.from_numpy(w)[None, None], sr))[1][0].T.detach().numpy()
                for w in waves]

    def nograd() -> list[np.ndarray]:
        with torch.no_grad():
            return [model.encode(model.preprocess(torch.from_numpy(w)[None, None], sr))[1][0].T.numpy()
                    for w in waves]

    def compress() -> None:
        for w in waves:
            model.compress(AudioSignal(torch.from_numpy(w)[None, None], sr))

    t, outs = _interleaved({"nograd": nograd, "readme": readme, "compress": compress,
                            "ours": lambda: tok.encode_batch(waves, sr)})
    gflop = _gflop_per_second(lambda x: model.encode(model.preprocess(x, sr)), sr)
    pre = f"codecs.{tag}"
    figs = _speed_figs(tag, secs, t, gflop, floor, _frames_equal(outs["ours"], outs["nograd"]))
    figs.update({
        f"{pre}.readme_loop_cpu_s": Fig(t["readme"].cpu_s, timing=t["readme"]),
        f"{pre}.compress_cpu_s": Fig(t["compress"].cpu_s, timing=t["compress"]),
        f"{pre}.speedup_vs_readme_loop": Fig(t["readme"].cpu_s / t["ours"].cpu_s, timing=t["ours"],
                                             peers=[f"{pre}.readme_loop_cpu_s"]),
        f"{pre}.speedup_vs_compress": Fig(t["compress"].cpu_s / t["ours"].cpu_s, timing=t["ours"],
                                          peers=[f"{pre}.compress_cpu_s"]),
    })
    notes = {
        f"{pre}.speedup_vs_nograd_loop": (
            f"CPU s of model.encode(preprocess(x)) per file under torch.no_grad / encode_batch, "
            f"best of {REPEATS} interleaved; {secs:.0f} s speech, DAC {kind}, all codebooks, "
            f"full-size random weights, 1 thread"),
        f"{pre}.speedup_vs_readme_loop": "the README loop as written (autograd on) / encode_batch",
        f"{pre}.speedup_vs_compress": ("per-file model.compress (1 s windows re-encode the receptive-field "
                                        "overlap; loudness)"),
        f"{pre}.rtf_per_core": "CPU s per audio s of encode_batch",
        f"{pre}.rtf_floor": "FLOPs per audio s / the sgemm rate measured in this run",
        f"{pre}.codes_equal_naive": "fraction of frames whose codes equal the package's model.encode (no_grad loop)",
    }
    return figs, notes


def _fsdd(n: int) -> list[np.ndarray]:
    files = sorted((SHARED / "data" / "fsdd" / "audio").glob("*.flac"))[:: max(1, 3000 // max(n, 1))][:n]
    waves = [sf.read(f, dtype="float32")[0] for f in files]
    return _resample(waves, 8_000, 16_000)


def bench_lyra(waves16: list[np.ndarray]) -> tuple[dict[str, float], dict[str, str]]:
    from speechtok.tokenizers.acoustic.lyra_codec import LyraConfig, LyraTokenizer
    from speechtok.tokenizers.acoustic.metrics import CorpusMetrics

    corpora = {"so": waves16, "fsdd": _fsdd(int(60 * SCALE))}
    figs: dict[str, float] = {}
    notes: dict[str, str] = {}
    model_dir = str(SHARED / "models" / "lyra-v2")
    for q in (8, 16, 46):
        tok = LyraTokenizer(LyraConfig(model_dir=model_dir, num_quantizers=q))
        both = CorpusMetrics(tok.info)
        cpu = secs = 0.0
        for name, waves in corpora.items():
            acc = CorpusMetrics(tok.info)
            with timed() as t:
                codes = tok.encode_batch(waves, 16_000)
            cpu += t.cpu_s
            for i, (w, c) in enumerate(zip(waves, codes, strict=True)):
                y = tok.decode(c, num_samples=len(w))
                acc.add(f"{name}{i}", w, y, c)
                both.add(f"{name}{i}", w, y, c)
                secs += len(w) / 16_000
            s = acc.summary()
            figs[f"lyra.{name}.stoi_q{q}"] = float(s["stoi"])  # type: ignore[arg-type]
            figs[f"lyra.{name}.sisdr_q{q}"] = float(s["si_sdr"])  # type: ignore[arg-type]
            figs[f"lyra.{name}.stoi_scored_q{q}"] = float(s["stoi_scored_cuts"])  # type: ignore[arg-type]
        s = both.summary()
        figs[f"lyra.stoi_q{q}"] = float(s["stoi"])  # type: ignore[arg-type]
        figs[f"lyra.sisdr_q{q}"] = float(s["si_sdr"])  # type: ignore[arg-type]
        figs[f"lyra.mel_q{q}"] = float(s["mel_distance"])  # type: ignore[arg-type]
        figs[f"lyra.bitrate_q{q}"] = float(s["bitrate_nominal"])  # type: ignore[arg-type]
        figs[f"lyra.bitrate_entropy_q{q}"] = float(s["bitrate_entropy"])  # type: ignore[arg-type]
        figs[f"lyra.encode_rtf_q{q}"] = cpu / secs
    n_so, n_fsdd = len(corpora["so"]), len(corpora["fsdd"])
    notes["lyra.stoi_q16"] = (
        f"mean STOI over scorable cuts of {n_so} speechocean762 + {n_fsdd} FSDD cuts, 16 codebooks "
        "(3.2 kbps), real Lyra v2 weights; FSDD digits (~0.5 s) are often too short for STOI"
    )
    notes["lyra.sisdr_q16"] = "mean SI-SDR dB (GAN decoder: phase not preserved, so low SI-SDR is expected)"
    notes["lyra.bitrate_entropy_q16"] = "frame rate x sum of per-codebook entropies (bound for entropy coding)"
    return figs, notes


def main() -> None:
    from bench.floors import sgemm_gflops

    warnings.filterwarnings("ignore", category=FutureWarning)
    set_threads(1)
    if not (SHARED / "data" / "speechocean762-train80").exists():
        raise SystemExit(f"bench_codecs needs {SHARED} (speechocean762, lyra-v2); set SPEECHTOK_SHARED")
    with timed() as t_floor:
        floor = sgemm_gflops(1)["gflops"]
    figures: dict[str, float | Fig] = {FLOOR: Fig(floor, timing=t_floor)}
    notes: dict[str, str] = {FLOOR: "float32 matmul GFLOP per CPU s measured in this run (bench.floors)"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, fn in (
            ("encodec", lambda: bench_encodec(_speechocean(30 * SCALE), tmp, floor)),
            ("dac16", lambda: bench_dac("16khz", "dac16", _speechocean(10 * SCALE), tmp, floor)),
            ("dac44", lambda: bench_dac("44khz", "dac44", _speechocean(6 * SCALE), tmp, floor)),
            ("lyra", lambda: bench_lyra(_speechocean(40 * SCALE))),
        ):
            with timed() as t:
                f, n = fn()
            print(f"[{name}] cpu {t.cpu_s:.1f} s wall {t.wall_s:.1f} s", flush=True)
            figures.update(f)
            notes.update(n)
    figures["codecs.peak_rss_mb"] = peak_rss_mb()
    old = [f"{c}.{k}" for c in ("encodec", "dac16", "dac44") for k in (
        "codes_equal_naive", "gflop_per_audio_s", "rtf_floor", "rtf_per_core", "rtf_per_core_naive",
        "speedup_vs_compress", "speedup_vs_naive", "speedup_vs_naive_nograd")]
    record(figures, notes, threads=1, code=CODE, retire=old,
           settings={"repeats": REPEATS, "scale": SCALE, "weights": "full-size random"})


if __name__ == "__main__":
    main()
