"""Cascade benchmark: Whisper n-best throughput batched vs one at a time, and the WER table.

Throughput: the same utterances of speechocean762 decoded by CTranslate2 Whisper tiny.en
(beam 5, 5 hypotheses, 1 thread) one at a time and in batches of 8. Real-time factor is
seconds of compute per second of audio; on this shared machine (2 cores, many jobs) wall time
is mostly waiting, so the figures use this process's CPU seconds (wall is printed alongside).

WER: read from a finished `speechtok train cascade recipes/cascade_speechocean.yaml -o RUN`
(default RUN = .cache/cascade/runs/speechocean), test split, normaliser
`speechtok.trainers.metrics.normalize_text`.

    python -m bench.bench_cascade [--utts 16] [--batch 8] [--run RUN] [--ctc-run RUN]

CTC n-best (`cascade.ctc_*`): a run with ``--set nbest.decoder=ctc --set nbest.ctc_run=LATENT_RUN
--set nbest.shards=SHARDS --set ger.enabled=false`` whose latent run was trained on the
cascade's train speakers only (`speechtok compare`'s latent run is).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import SHARED, peak_rss_mb, record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]


def throughput(n_utts: int, batch: int) -> dict[str, float]:
    from speechtok.models.nbest import load_audio
    from speechtok.models.whisper_nbest import WhisperNBest, WhisperNBestConfig
    from speechtok.trainers.cascade.data import read_kaldi_dir

    utts = read_kaldi_dir(SHARED / "data" / "speechocean762-train80")[:n_utts]
    waves = [load_audio(u.path) for u in utts]
    audio_s = sum(len(w) for w in waves) / 16000.0
    dec = WhisperNBest(
        WhisperNBestConfig(
            model_dir=SHARED / "models" / "whisper-tiny.en-ct2", beam_size=5, num_hypotheses=5, threads=1
        )
    )
    dec.decode_batch(waves[:1])  # warm-up
    with timed() as single:
        one = [dec.decode_batch([w])[0] for w in waves]
    with timed() as batched:
        many = [h for i in range(0, len(waves), batch) for h in dec.decode_batch(waves[i : i + batch])]
    same = sum(a[0].text == b[0].text for a, b in zip(one, many, strict=True))
    print(f"audio {audio_s:.1f} s in {len(waves)} utts; 1-best identical batched vs single: {same}/{len(waves)}")
    print(f"single : cpu {single.cpu_s:.1f} s wall {single.wall_s:.1f} s")
    print(f"batched: cpu {batched.cpu_s:.1f} s wall {batched.wall_s:.1f} s (batch {batch})")
    return {
        "cascade.nbest_rtf_single": single.cpu_s / audio_s,
        "cascade.nbest_rtf_batched": batched.cpu_s / audio_s,
        "cascade.nbest_batch_speedup": single.cpu_s / batched.cpu_s,
        "_wall_speedup": single.wall_s / batched.wall_s,
        "_identical": same / len(waves),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--utts", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--run", type=Path, default=ROOT / ".cache" / "cascade" / "runs" / "speechocean")
    ap.add_argument("--ctc-run", type=Path, default=ROOT / "runs" / "cascade_ctc",
                    help="a cascade run with nbest.decoder=ctc (figures cascade.ctc_*)")
    args = ap.parse_args()
    set_threads(1)
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    t = throughput(args.utts, args.batch)
    wall_speedup, identical = t.pop("_wall_speedup"), t.pop("_identical")
    figures.update(t)
    base = f"Whisper tiny.en CT2, beam 5, 5-best, 1 thread, {args.utts} speechocean utts; CPU s per audio s"
    notes["cascade.nbest_rtf_single"] = f"{base}, one utterance per call"
    notes["cascade.nbest_rtf_batched"] = f"{base}, batches of {args.batch}"
    notes["cascade.nbest_batch_speedup"] = (
        f"CPU-time ratio single/batched (wall ratio {wall_speedup:.2f} on a loaded machine); "
        f"1-best identical in {100 * identical:.0f}% of utts"
    )
    res_path = args.run / "results.json"
    if res_path.exists():
        res = json.loads(res_path.read_text())
        test = res["results"]["test"]
        n = res["utterances"]
        lam = res["tuned_lambda"]
        src = f"test split ({n['test']} utts, speaker-disjoint; dev {n['dev']}); run {args.run.name}"
        for key, name in (("1best", "wer_1best"), ("oracle", "wer_oracle"), ("rescored_lm", "wer_rescored"),
                          ("ger", "wer_ger")):
            if key in test:
                figures[f"cascade.{name}"] = test[key]
        notes["cascade.wer_1best"] = f"Whisper tiny.en 5-best, {src}"
        notes["cascade.wer_oracle"] = f"best of the 5-best per utterance, {src}"
        notes["cascade.wer_rescored"] = (
            f"small Llama LM trained here, lambda={lam.get('lm')} tuned on dev "
            f"(3-gram baseline lambda={lam.get('ngram')}: {test.get('rescored_ngram')}), {src}"
        )
        notes["cascade.wer_ger"] = f"GER, small Llama fine-tuned on {n['train']} train n-best lists, {src}"
    else:
        print(f"no {res_path}: run the recipe first for the WER figures")
    ctc_path = args.ctc_run / "results.json"
    if ctc_path.exists():
        res = json.loads(ctc_path.read_text())
        test, n, lam = res["results"]["test"], res["utterances"], res["tuned_lambda"]
        for key, name in (("1best", "ctc_wer_1best"), ("oracle", "ctc_wer_oracle"),
                          ("rescored_lm", "ctc_wer_rescored")):
            if key in test:
                figures[f"cascade.{name}"] = test[key]
        rec = json.loads((args.ctc_run / "recipe.resolved.json").read_text())["nbest"]
        notes["cascade.ctc_wer_1best"] = (
            f"CTC prefix beam search (beam {rec['beam_size']}, {rec['num_hypotheses']}-best) over the CTC head of "
            f"latent run {Path(str(rec['ctc_run'])).name} (trained on the cascade's train speakers only), test split "
            f"({n['test']} utts); decoding {res['timings']['decode_wall_s']:.0f} s wall for {sum(n.values())} utts")
        notes["cascade.ctc_wer_rescored"] = (f"the same lists rescored by the small Llama LM, "
                                             f"lambda={lam.get('lm')} tuned on dev")
    print(f"peak RSS {peak_rss_mb():.0f} MiB")
    record(figures, notes)


if __name__ == "__main__":
    main()
