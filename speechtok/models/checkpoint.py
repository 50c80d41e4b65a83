"""Checkpoints without pickle: safetensors for tensors, JSON for everything else; durable.

Layout of `RUN/checkpoints/step_0000100/`::

    model.safetensors      parameters (+ buffers); all, or only the trainable ones
    optimizer.safetensors  optimizer state tensors, keys "<param index>.<name>"
    optimizer.json         param_groups and non-tensor state
    rng.safetensors        torch CPU (and CUDA) RNG states
    trainer.json           {"step", "data": loader position, "extra": {...}, "files": {name: bytes}}

Durability protocol of `save_checkpoint` (a SIGKILL or power cut at any point leaves a run
that resumes from the newest complete checkpoint):

1. every file is written into ``.step_N.tmp/``; ``trainer.json`` (with the size of every other
   file) last; all files and the directory are fsynced;
2. the directory is renamed to ``step_N`` and the parent fsynced (a complete checkpoint exists);
3. ``latest`` is replaced atomically (temp + fsync + rename + fsync dir);
4. only then are checkpoints beyond the newest `keep` removed.

`latest_checkpoint` trusts ``latest`` only when it names a complete checkpoint (``trainer.json``
parses and every listed file has its recorded size); otherwise it takes the newest complete
``step_*`` directory, so a missing or damaged pointer never restarts a run from step 0.

Fault points for crash tests (`speechtok.faults`, ``SPEECHTOK_FAULT=POINT[:N]``):
``ckpt_after_model`` (model file written), ``ckpt_before_rename`` (temporary directory complete),
``ckpt_after_rename`` (renamed, ``latest`` not updated), ``ckpt_after_latest`` (pointer updated,
old checkpoints not removed), ``ckpt_mid_prune`` (after removing one old checkpoint).
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

from speechtok import atomic
from speechtok.errors import InputError
from speechtok.faults import maybe_fault

CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors")


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


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                    data: dict[str, Any], extra: dict[str, Any] | None = None, trainable_only: bool = False,
                    keep: int = 2) -> Path:
    """Writes `run_dir/checkpoints/step_{step:07d}` durably (see the module docstring), points
    `latest` to it, then keeps the newest `keep` checkpoints (0 = keep all)."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".step_*"):  # temporaries of a killed save
        shutil.rmtree(stale, ignore_errors=True)
    name = f"step_{step:07d}"
    tmp = root / f".{name}.tmp"
    tmp.mkdir()
    save_file(model_tensors(model, trainable_only=trainable_only), str(tmp / "model.safetensors"))
    maybe_fault("ckpt_after_model")
    opt_tensors, opt_meta = _optimizer_split(optimizer)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(opt_meta))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    files = {f: (tmp / f).stat().st_size for f in CHECKPOINT_FILES}
    meta = {"step": step, "data": data, "extra": extra or {}, "files": files}
    (tmp / "trainer.json").write_text(json.dumps(meta, indent=1))
    atomic.fsync_tree(tmp)
    maybe_fault("ckpt_before_rename")
    final = root / name
    if final.exists():  # the same step saved again: move the old copy aside, remove it afterwards
        os.replace(final, root / f".{name}.old")
    os.replace(tmp, final)
    atomic.fsync_dir(root)
    maybe_fault("ckpt_after_rename")
    atomic.write_text(root / "latest", name)
    maybe_fault("ckpt_after_latest")
    shutil.rmtree(root / f".{name}.old", ignore_errors=True)
    if keep > 0:
        for old in sorted(p for p in root.glob("step_*") if p.is_dir() and p.name != name)[: -(keep - 1) or None]:
            shutil.rmtree(old)
            maybe_fault("ckpt_mid_prune")
    atomic.fsync_dir(root)
    return final


def is_complete(path: Path) -> bool:
    """True when `path` is a whole checkpoint: trainer.json parses and every file it lists
    exists with the recorded size (checkpoints written before sizes were recorded: every file
    exists)."""
    try:
        meta = json.loads((path / "trainer.json").read_text())
        files = meta.get("files") or {f: None for f in CHECKPOINT_FILES}
        return isinstance(meta.get("step"), int) and all(
            (path / f).is_file() and (size is None or (path / f).stat().st_size == size) for f, size in files.items()
        )
    except (OSError, ValueError, AttributeError):
        return False


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None (see the module docstring)."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    candidates = sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if named.name.startswith("step_") and is_complete(named) and (not candidates or named >= candidates[0]):
            return named
    return next((p for p in candidates if is_complete(p)), None)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Checkpoint:
    """Restores model tensors, optimizer state and RNG states from `path`; returns the rest."""
    path = Path(path)
    if not (path / "trainer.json").exists():
        raise InputError(str(path), "not a checkpoint directory (no trainer.json)")
    load_model_tensors(model, path / "model.safetensors")
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_join(load_file(str(path / "optimizer.safetensors")),
                                                  json.loads((path / "optimizer.json").read_text())))
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    meta = json.loads((path / "trainer.json").read_text())
    return Checkpoint(path=path, step=int(meta["step"]), data=meta["data"], extra=meta["extra"])
