"""Latent adapters compared on one encoder: WER/CER, tokens per second, parameters, training time.

The encoder is the real pretrained Whisper tiny.en (its encoder states, ``feats.whisper`` from
`recipes/speechocean_whisper.yaml`) behind a trained projection + CTC head: stage 1 runs once;
every adapter then trains stage 2 (adapter + tiny Llama from scratch) on the same data, encoder
and steps (`recipes/latent_whisper.yaml`). Figures: `latent.<adapter>.wer` (+ `.cer`,
`.tokens_per_s`, `.params`, `.train_s`), `latent.ctc.length_reduction` (encoder frames /
CTC-averaged frames) and `latent.ctc_head.cer` (the stage-1 CTC head alone, greedy).

Steps: `BENCH_LATENT_STEPS1` (default 1000), `BENCH_LATENT_STEPS2` (default 500). Shards:
`BENCH_LATENT_SHARDS` (default `runs/so_whisper`, built with the recipe when absent: ~11 min
wall on 2 cores, Whisper states cost ~0.2 CPU-s per audio second). `BENCH_LATENT_ONLY=a,b`
runs some variants (default: all but ``stack_tf``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.common import SHARED, record, set_threads, timed

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "stack": {"adapter.kind": "stack", "adapter.k": 2, "adapter.post": "linear"},
    "stack_tf": {"adapter.kind": "stack", "adapter.k": 2, "adapter.post": "transformer"},
    "conv": {"adapter.kind": "conv", "adapter.stride": 2, "adapter.conv_layers": 1, "adapter.post": "linear"},
    "ctc_blank": {"adapter.kind": "ctc", "adapter.ctc_strategy": "remove_blank"},
    "ctc_avg": {"adapter.kind": "ctc", "adapter.ctc_strategy": "average"},
    "ctc_thr": {"adapter.kind": "ctc", "adapter.ctc_strategy": "threshold", "adapter.ctc_threshold": 0.9},
    "qformer": {"adapter.kind": "qformer", "adapter.window": 25, "adapter.num_queries": 6},
}


def _whisper_shards() -> Path:
    path = Path(os.environ.get("BENCH_LATENT_SHARDS", ROOT / "runs" / "so_whisper"))
    if not (path / "index.json").exists():
        from speechtok.pipeline.recipe import load_recipe
        from speechtok.pipeline.runner import RunOptions, run

        recipe = load_recipe(ROOT / "recipes" / "speechocean_whisper.yaml",
                             sets={"corpus": str(SHARED / "data" / "speechocean762-train80"),
                                   "whisper": str(SHARED / "models" / "whisper-tiny.en-ct2")})
        run(recipe, path, RunOptions(workers=2, progress=False))
    return path


def main() -> None:
    set_threads(1)
    from speechtok.trainers.latent import run_recipe

    s1 = int(os.environ.get("BENCH_LATENT_STEPS1", "1000"))
    s2 = int(os.environ.get("BENCH_LATENT_STEPS2", "500"))
    only = ([v for v in os.environ.get("BENCH_LATENT_ONLY", "").split(",") if v]
            or [v for v in VARIANTS if v != "stack_tf"])
    recipe = ROOT / "recipes" / "latent_whisper.yaml"
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shards = _whisper_shards()
        base = {"data.shards": str(shards), "stage1.max_steps": s1, "train.max_steps": s2,
                "latent.eval_utts": int(os.environ.get("BENCH_LATENT_EVAL_UTTS", "240")),
                "latent.max_new_tokens": 80, "stage1.device": "cpu", "train.device": "cpu",
                "stage1.checkpoint_every": s1, "train.checkpoint_every": s2}
        enc_run = Path(tmp) / "encoder"
        enc_name = only[0]
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
            notes[f"latent.{name}.wer"] = (
                f"dev WER, {rep['dev_utts']} utts of held-out speakers; Whisper tiny.en states -> projection + CTC "
                f"({s1} steps) -> {name} adapter -> Llama 128x3 from scratch ({s2} steps), 1 thread CPU")
            if name == enc_name:
                figures["latent.ctc_head.cer"] = rep["ctc.cer"]
                notes["latent.ctc_head.cer"] = "greedy CTC of the stage-1 head alone (no LLM), same dev utts"
            if name == "ctc_avg":
                figures["latent.ctc.length_reduction"] = 50.0 / max(rep["adapter_tokens_per_s"], 1e-9)
                notes["latent.ctc.length_reduction"] = ("encoder frames (50/s) / CTC-averaged frames (runs of one "
                                                        f"label), dev set; CTC head CER {rep['ctc.cer']:.2f}")
            record(figures, notes)  # after every adapter, so a stopped run keeps what it measured
            figures, notes = {}, {}


if __name__ == "__main__":
    main()
