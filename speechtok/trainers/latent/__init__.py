"""Latent family: speech encoder + modality adapter (conv, CTC compression, Q-Former) + causal LM.

`speechtok train latent RECIPE.yaml -o RUN` calls `run_recipe` (see `train.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def run_recipe(recipe_path: Path, out_dir: Path, overrides: Mapping[str, str]) -> int:
    """Trains and evaluates encoder + adapter + LLM from a recipe; returns the exit code (0 = done)."""
    # lazy: the trainer (torch, transformers) loads only when a run starts
    from speechtok.trainers.latent.train import run_recipe as _run

    return _run(recipe_path, out_dir, overrides)
