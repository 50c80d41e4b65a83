"""Text-based integration (the cascade): ASR n-best lists, LLM rescoring, generative error correction.

Modules: `nbest` (merging n-best lists; the records and the CTranslate2 Whisper decoder are
`speechtok.models.nbest` and `speechtok.models.whisper_nbest`), `nbest_sphinx` (PocketSphinx),
`lm_scoring` (HF causal LM, 3-gram), `rescoring` (lambda-weighted AM + LM, grid search, plot),
`text_lm` (small Llama trained here), `hyporadise` (HyPoradise JSON), `ger` (fine-tuning + batched
greedy correction), `recipe` + `run` (`speechtok train cascade`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_recipe(recipe_path: Path, out_dir: Path, overrides: Mapping[str, Any]) -> int:
    """`speechtok train cascade RECIPE.yaml -o RUN [--set key=value ...]`; returns the exit code."""
    from speechtok.trainers.cascade.run import run_recipe as _run

    return _run(recipe_path, out_dir, overrides)


__all__ = ["run_recipe"]
