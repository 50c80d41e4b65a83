"""Whisper tiny.en read from its CTranslate2 files into torch (`speechtok.models.whisper_ct2`),
checked against CTranslate2 on real speech, 1 thread.

Audio: 60 speechocean762-train80 utterances, every 26th line of ``wav.scp`` (spread over the
80 speakers). Both runtimes get the same log-mel window (faster-whisper's extractor).
- ``whisper_torch.max_abs_diff_states``: the largest |CTranslate2 - torch| over all final encoder
  states of the 60 utterances (both compute in float32 from the float16 weights).
- ``whisper_torch.greedy_agreement``: fraction of utterances with identical greedy token ids
  (CTranslate2 ``generate(beam_size=1)`` vs `speechtok.models.whisper_greedy.greedy_ids`).
"""

from __future__ import annotations

import soundfile as sf

from bench.common import SHARED, record, set_threads, timed

N_UTTS = 60
STRIDE = 26


def main() -> None:
    set_threads(1)
    from speechtok.models.whisper_check import check_against_ct2
    from speechtok.paths import whisper_tiny_en_dir

    root = SHARED / "data" / "speechocean762-train80"
    lines = [ln for ln in (root / "wav.scp").read_text().split("\n") if ln.strip()][::STRIDE][:N_UTTS]
    waves = [sf.read(root / ln.split()[1], dtype="float32")[0] for ln in lines]
    model_dir = whisper_tiny_en_dir()
    with timed() as t:
        res = check_against_ct2(model_dir, waves, threads=1)
    figures = {
        "whisper_torch.max_abs_diff_states": max(res.max_abs_diff),
        "whisper_torch.greedy_agreement": res.greedy_agreement,
        "whisper_torch.utterances": float(len(waves)),
    }
    notes = {
        "whisper_torch.max_abs_diff_states": f"max |CT2 - torch| of final encoder states (1, 1500, 384) over "
                                             f"{len(waves)} speechocean762 utterances; weights from {model_dir}",
        "whisper_torch.greedy_agreement": f"identical greedy token ids, torch vs CTranslate2 beam_size=1 "
                                          f"({sum(res.same_ids)}/{len(waves)}); {t.cpu_s:.0f} CPU s in all, 1 thread",
        "whisper_torch.utterances": "every 26th line of speechocean762-train80/wav.scp",
    }
    for i, same in enumerate(res.same_ids):
        if not same:
            print(f"differs: {lines[i].split()[0]} ct2={res.ct2_ids[i]} torch={res.torch_ids[i]}")
    record(figures, notes, settings={"utterances": len(waves), "corpus": "speechocean762-train80",
                                     "selection": f"every {STRIDE}th line of wav.scp", "model": str(model_dir)},
           timing=t, threads=1,
           code=["speechtok/models/whisper_ct2.py", "speechtok/models/whisper_greedy.py",
                 "speechtok/models/whisper_check.py"],
           units={"whisper_torch.max_abs_diff_states": "abs", "whisper_torch.greedy_agreement": "fraction",
                  "whisper_torch.utterances": "count"})


if __name__ == "__main__":
    main()
