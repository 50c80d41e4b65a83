"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

Layout of `RUN/checkpoints/step_0000100/`::

    model.safetensors      parameters (+ buffers); all, or only the trainable ones
    optimizer.safetensors  optimizer state tensors, keys "<param index>.<name>"
    optimizer.json         param_groups and non-tensor state
    rng.safetensors        torch CPU (and CUDA) RNG states
    trainer.json           {"step", "data": loader position, "extra": {...}}

`RUN/checkpoints/latest` holds the name of the newest complete checkpoint. A checkpoint is
written to a temporary directory and renamed, so a crash never leaves a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from speechtok.errors import InputError


@dataclass(frozen=True)
class Checkpoint:
    """What `load_checkpoint` restored: the step, the data position and caller extras."""

    path: Path
    step: int
    data: dict[str, Any]
    extra: dict[str, Any]


def model_tensors(model: nn.Module, *, trainable_only: bool) -> dict[str, torch.Tensor]:
    """Name -> tensor of the parameters (tied ones once) and buffers to save."""
    out = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad or not trainable_only}
    if not trainable_only:
        out.update({n: b.detach() for n, b in model.named_buffers() if b is not None})
    return {n: t.contiguous().cpu().clone() for n, t in out.items()}


def load_model_tensors(model: nn.Module, path: Path) -> int:
    """Copies the tensors of `path` into `model` in place; returns how many. Unknown names raise."""
    tensors = load_file(str(path))
    own: dict[str, torch.Tensor] = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise InputError(str(path), f"{len(unknown)} tensors the model does not have, e.g. {unknown[:3]}")
    with torch.no_grad():
        for name, t in tensors.items():
            if own[name].shape != t.shape:
                raise InputError(str(path), f"{name} has shape {tuple(t.shape)}, the model {tuple(own[name].shape)}")
            own[name].copy_(t)
    return len(tensors)


def _optimizer_split(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value.contiguous().cpu().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = t
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    data: dict[str, Any],
    extra: dict[str, Any] | None = None,
    trainable_only: bool = False,
    keep: int = 2,
) -> Path:
    """Writes `run_dir/checkpoints/step_{step:07d}` atomically and points `latest` to it; keeps the
    newest `keep` checkpoints."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(model_tensors(model, trainable_only=trainable_only), str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _optimizer_split(optimizer)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(opt_meta))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    (tmp / "trainer.json").write_text(json.dumps({"step": step, "data": data, "extra": extra or {}}, indent=1))
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(name)
    os.replace(latest_tmp, root / "latest")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "trainer.json").exists() else None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Checkpoint:
    """Restores model tensors, optimizer state and RNG states from `path`; returns the rest."""
    path = Path(path)
    if not (path / "trainer.json").exists():
        raise InputError(str(path), "not a checkpoint directory (no trainer.json)")
    load_model_tensors(model, path / "model.safetensors")
    if optimizer is not None:
        state = _optimizer_join(
            load_file(str(path / "optimizer.safetensors")), json.loads((path / "optimizer.json").read_text())
        )
        optimizer.load_state_dict(state)
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    meta = json.loads((path / "trainer.json").read_text())
    return Checkpoint(path=path, step=int(meta["step"]), data=meta["data"], extra=meta["extra"])
