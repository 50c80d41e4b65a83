"""Audio-token family: vocabulary, sequence builders and the token-LM trainer.

`speechtok train token RECIPE.yaml -o RUN` calls `run_recipe` (see `train.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def run_recipe(recipe_path: Path, out_dir: Path, overrides: Mapping[str, str]) -> int:
    """Trains and evaluates a token LM from a recipe; returns the exit code (0 = done)."""
    # lazy: the trainer (torch, transformers) loads only when a run starts
    from speechtok.trainers.token.train import run_recipe as _run

    return _run(recipe_path, out_dir, overrides)
