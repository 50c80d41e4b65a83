"""Text-based integration (the cascade): ASR n-best lists, LLM rescoring, generative error correction.

Modules: `nbest` (records + JSONL cache), `nbest_whisper` (CTranslate2 Whisper, batched),
`nbest_sphinx` (PocketSphinx), `lm_scoring` (HF causal LM, 3-gram), `rescoring` (lambda-weighted
AM + LM, grid search, plot), `text_lm` (small Llama trained here), `hyporadise` (HyPoradise JSON),
`ger` (fine-tuning + batched greedy correction), `recipe` + `run` (`speechtok train cascade`).
"""

from __future__ import annotations

from pathlib import Path


def run_recipe(recipe_path: Path, out_dir: Path, overrides: dict[str, str]) -> int:
    """`speechtok train cascade RECIPE.yaml -o RUN [--set key=value ...]`; returns the exit code."""
    from speechtok.trainers.cascade.run import run_recipe as _run

    return _run(recipe_path, out_dir, overrides)


__all__ = ["run_recipe"]
