"""On-disk formats of k-means: the fitted model and the per-iteration checkpoint (no pickle).

Model directory (written by `save_model`, read by `load_model`):

```
DIR/centroids.safetensors   # "centroids" (K, D') float32; "pca_matrix" (D', D) and
                            # "pca_bias" (D',) float32 when PCA is on
DIR/kmeans.json             # {"format": "speechtok.kmeans", "format_version": 1, "config": {...},
                            #  "dim": D, "checksum": sha256, "feature_fingerprint": ...,
                            #  "sample_sha256": ..., "total_frames": N, "n_train": n,
                            #  "inertia_history": [[...] per restart], "best_restart": r}
```

Checkpoint (`CKPT/kmeans-checkpoint.safetensors`): tensors "centroids" (the restart in progress)
and "best_centroids" (the best finished restart, when any), with the JSON state (restart,
iteration, histories, config, sample hash) in the safetensors metadata. It is replaced by atomic
rename after every iteration, so a killed fit finds either the previous or the new state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save

from speechtok import atomic
from speechtok.errors import InputError

MODEL_TENSORS = "centroids.safetensors"
MODEL_JSON = "kmeans.json"
CHECKPOINT = "kmeans-checkpoint.safetensors"
FORMAT = "speechtok.kmeans"
FORMAT_VERSION = 1


def _atomic_save(tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str] | None) -> None:
    atomic.write_bytes(path, save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata))


def save_model_files(
    out_dir: str | Path, tensors: dict[str, np.ndarray], info: dict[str, Any]
) -> Path:
    """Writes `centroids.safetensors` and `kmeans.json` into `out_dir`; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_save(tensors, out / MODEL_TENSORS, {"format": FORMAT})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **info}
    atomic.write_text(out / MODEL_JSON, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out


def load_model_files(model_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads a model directory; returns (tensors, info). Raises `InputError` when malformed."""
    d = Path(model_dir)
    for name in (MODEL_TENSORS, MODEL_JSON):
        if not (d / name).is_file():
            raise InputError(str(d / name), "missing; is this a directory written by KMeansModel.save?")
    info = json.loads((d / MODEL_JSON).read_text())
    if info.get("format") != FORMAT or int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(
            str(d / MODEL_JSON),
            f"format {info.get('format')!r} v{info.get('format_version')} is not "
            f"{FORMAT!r} <= v{FORMAT_VERSION}; upgrade speechtok",
        )
    return load_file(str(d / MODEL_TENSORS)), info


@dataclass(kw_only=True)
class FitState:
    """Progress of a fit: where it is, and the best finished restart so far."""

    config: dict[str, Any]
    sample_sha256: str
    restart: int = 0
    iteration: int = 0  # iterations done in `restart`
    centroids: np.ndarray | None = None  # (K, D') of `restart` after `iteration` iterations
    history: list[float] = field(default_factory=list)  # objective per iteration of `restart`
    histories: list[list[float]] = field(default_factory=list)  # finished restarts
    best_restart: int = -1
    best_centroids: np.ndarray | None = None
    done: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "config": self.config,
                "sample_sha256": self.sample_sha256,
                "restart": self.restart,
                "iteration": self.iteration,
                "history": self.history,
                "histories": self.histories,
                "best_restart": self.best_restart,
                "done": self.done,
            },
            sort_keys=True,
        )


def save_checkpoint(ckpt_dir: str | Path, state: FitState) -> None:
    """Atomically replaces the checkpoint in `ckpt_dir` with `state`."""
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    if state.centroids is not None:
        tensors["centroids"] = state.centroids
    if state.best_centroids is not None:
        tensors["best_centroids"] = state.best_centroids
    if not tensors:
        tensors["empty"] = np.zeros(0, dtype=np.float32)
    _atomic_save(tensors, d / CHECKPOINT, {"state": state.to_json()})


def load_checkpoint(ckpt_dir: str | Path) -> FitState | None:
    """The checkpoint in `ckpt_dir`, or None when there is none."""
    path = Path(ckpt_dir) / CHECKPOINT
    if not path.is_file():
        return None

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if "state" not in meta:
        raise InputError(str(path), "has no fit state; delete it to start the fit afresh")
    s = json.loads(meta["state"])
    return FitState(
        config=s["config"],
        sample_sha256=s["sample_sha256"],
        restart=int(s["restart"]),
        iteration=int(s["iteration"]),
        centroids=tensors.get("centroids"),
        history=[float(v) for v in s["history"]],
        histories=[[float(v) for v in h] for h in s["histories"]],
        best_restart=int(s["best_restart"]),
        best_centroids=tensors.get("best_centroids"),
        done=bool(s["done"]),
    )
