"""Latent adapters compared on one encoder: WER/CER, tokens per second, parameters, training time.

Stage 1 (the fbank encoder with CTC) runs once; every adapter then trains stage 2 (adapter +
tiny Llama) on the same data, encoder and steps (`recipes/latent_speechocean.yaml`). Figures:
`latent.<adapter>.wer` (+ `.cer`, `.tokens_per_s`, `.params`, `.train_s`) and
`latent.ctc.length_reduction` (encoder frames / CTC-compressed frames, "average" strategy).

Steps are small by default so that this fits a shared CPU (`BENCH_LATENT_STEPS1`,
`BENCH_LATENT_STEPS2`); WER after a few minutes of CPU training is far from converged and the
note says so. Shards: `BENCH_TOKEN_SHARDS` (default `runs/so_shards`, built when absent).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.bench_token import _shards
from bench.common import record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "stack": {"adapter.kind": "stack", "adapter.k": "2", "adapter.post": "linear"},
    "stack_tf": {"adapter.kind": "stack", "adapter.k": "2", "adapter.post": "transformer"},
    "conv": {"adapter.kind": "conv", "adapter.stride": "2", "adapter.conv_layers": "1", "adapter.post": "linear"},
    "ctc_blank": {"adapter.kind": "ctc", "adapter.ctc_strategy": "remove_blank"},
    "ctc_avg": {"adapter.kind": "ctc", "adapter.ctc_strategy": "average"},
    "ctc_thr": {"adapter.kind": "ctc", "adapter.ctc_strategy": "threshold", "adapter.ctc_threshold": "0.9"},
    "qformer": {"adapter.kind": "qformer", "adapter.window": "25", "adapter.num_queries": "6"},
}


def main() -> None:
    set_threads(1)
    from speechtok.trainers.latent import run_recipe

    s1 = os.environ.get("BENCH_LATENT_STEPS1", "60")
    s2 = os.environ.get("BENCH_LATENT_STEPS2", "40")
    only = [v for v in os.environ.get("BENCH_LATENT_ONLY", "").split(",") if v] or list(VARIANTS)
    recipe = ROOT / "recipes" / "latent_speechocean.yaml"
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shards = _shards(Path(tmp))
        base = {"data.shards": str(shards), "stage1.max_steps": s1, "train.max_steps": s2, "latent.eval_utts": os.environ.get("BENCH_LATENT_EVAL_UTTS", "40"),
                "latent.max_new_tokens": "60", "stage1.device": "cpu", "train.device": "cpu"}
        enc_run = Path(tmp) / "encoder"
        for name in only:
            sets = {**base, **VARIANTS[name]}
            if enc_run.exists():
                sets["latent.encoder_from"] = str(enc_run)
                out = Path(tmp) / name
            else:
                out = enc_run
            with timed() as t:
                run_recipe(recipe, out, sets)
            rep = json.loads((out / "eval.json").read_text())
            print(f"{name:10s} wer {rep['wer']:.3f} cer {rep['cer']:.3f} tok/s {rep['adapter_tokens_per_s']:.1f} "
                  f"params {rep['trainable_params']} stage2 {rep['stage2_wall_s']:.0f}s cpu {t.cpu_s:.0f}s")
            figures[f"latent.{name}.wer"] = rep["wer"]
            figures[f"latent.{name}.cer"] = rep["cer"]
            figures[f"latent.{name}.tokens_per_s"] = rep["adapter_tokens_per_s"]
            figures[f"latent.{name}.params"] = rep["trainable_params"]
            figures[f"latent.{name}.train_s"] = rep["stage2_wall_s"]
            notes[f"latent.{name}.wer"] = (f"dev WER, stage1 {s1} + stage2 {s2} steps on a shared CPU: far from "
                                           f"converged; encoder CTC CER {rep['ctc.cer']:.2f}")
            if name == "ctc_avg":
                figures["latent.ctc.length_reduction"] = 25.0 / max(rep["adapter_tokens_per_s"], 1e-9)
                notes["latent.ctc.length_reduction"] = (f"encoder frames (25/s) / CTC-averaged frames, dev set; "
                                                        f"encoder CTC CER {rep['ctc.cer']:.2f} (an untrained CTC "
                                                        "head labels nearly all frames blank: one run per utterance)")
            record(figures, notes)  # after every adapter, so a stopped run keeps what it measured
            figures, notes = {}, {}


if __name__ == "__main__":
    main()
