"""Word alignments of the `ctc_align` stage against PocketSphinx forced alignment.

Reads ``align.ctc`` from the shard output of `recipes/speechocean_whisper_align.yaml`
(`BENCH_ALIGN_SHARDS`, default `runs/so_whisper`) and aligns the same speechocean762 utterances
with PocketSphinx's en-us model (`set_align_text`, word level), the independent reference.
Figures: `align.ctc_start_err_ms` (median |start difference| per word), `align.ctc_centre_in_ref`
(share of words whose CTC span centre lies inside the PocketSphinx word), `align.utts`, and the
CPU cost `align.ctc_cpu_s_per_audio_s` from the run's report (the stage's own processing).
Utterances PocketSphinx cannot align (out-of-vocabulary words, failed search) are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from bench.common import SHARED, record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]


def sphinx_words(wave: np.ndarray, text: str, decoder: object) -> list[tuple[str, float, float]] | None:
    """PocketSphinx word alignment `(word, start_s, duration_s)` of 16 kHz int16 `wave`, or None."""
    d: object = decoder
    try:
        d.set_align_text(text.lower())  # type: ignore[attr-defined]
        for second in (False, True):  # word search, then the alignment pass
            d.start_utt()  # type: ignore[attr-defined]
            d.process_raw(wave.tobytes(), full_utt=True)  # type: ignore[attr-defined]
            d.end_utt()  # type: ignore[attr-defined]
            if not second:
                d.set_alignment()  # type: ignore[attr-defined]
        al = d.get_alignment()  # type: ignore[attr-defined]
        if al is None:
            return None
        words = [(w.name, w.start / 100.0, w.duration / 100.0) for w in al
                 if w.name not in ("<s>", "</s>", "<sil>") and not w.name.startswith("[")]
    except (RuntimeError, KeyError, ValueError):
        return None
    return words if len(words) == len(text.split()) else None


def main() -> None:
    set_threads(1)
    import soundfile as sf
    from pocketsphinx import Decoder

    from speechtok.shards.reader import ShardDataset

    shards = Path(os.environ.get("BENCH_ALIGN_SHARDS", ROOT / "runs" / "so_whisper"))
    limit = int(os.environ.get("BENCH_ALIGN_UTTS", "300"))
    so = SHARED / "data" / "speechocean762-train80"
    index = shards / "index.json"
    if not so.exists() or not index.exists() or '"align.ctc"' not in index.read_text():
        print(f"skipped: needs {so} and an align.ctc group in {shards}: run recipes/speechocean_whisper.yaml, "
              "train recipes/latent_whisper.yaml, then recipes/speechocean_whisper_align.yaml on the same -o")
        return
    wavs = dict(line.split(maxsplit=1) for line in (so / "wav.scp").read_text().splitlines())
    ds = ShardDataset(shards, groups=("cuts", "align.ctc"), columns=["text", "align.ctc"])
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    err: list[float] = []
    inside: list[bool] = []
    used = 0
    rows = list(ds)
    with timed() as t:
        for row in rows[:: max(1, len(rows) // limit)][:limit]:
            ctc = row["align.ctc"]
            if not ctc or row["id"] not in wavs:
                continue
            x, sr = sf.read(so / wavs[row["id"]].strip(), dtype="int16")
            ref = sphinx_words(x, str(row["text"]), decoder) if sr == 16000 else None
            if ref is None:
                continue
            used += 1
            for (_, rs, rd), w in zip(ref, ctc, strict=True):
                err.append(abs(float(w["start"]) - rs))
                centre = float(w["start"]) + float(w["duration"]) / 2
                inside.append(rs <= centre <= rs + rd)
    report = json.loads((shards / "report.json").read_text())
    stage = next((s for s in report["stages"] if s["group"] == "align.ctc"), {})
    audio_s = float(stage.get("audio_s") or 0)
    figures = {"align.ctc_start_err_ms": 1000 * float(np.median(err)),
               "align.ctc_centre_in_ref": float(np.mean(inside)),
               "align.utts": float(used)}
    notes = {"align.ctc_start_err_ms": (f"median |CTC - PocketSphinx| word start over {len(err)} words of {used} "
                                        f"speechocean762 utts (CTC: Whisper tiny.en states + a CTC head trained here); "
                                        f"sphinx alignment {t.cpu_s:.0f} CPU s"),
             "align.ctc_centre_in_ref": "share of words whose CTC span centre is inside the PocketSphinx word span"}
    if audio_s and stage.get("process_cpu_s"):
        figures["align.ctc_cpu_s_per_audio_s"] = float(stage["process_cpu_s"]) / audio_s
    print(json.dumps(figures, indent=1))
    record(figures, notes)


if __name__ == "__main__":
    main()
