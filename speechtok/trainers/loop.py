"""The training loop every trainer family shares (nanoGPT-style: one function, top to bottom).

    for step in [start, max_steps):
        lr <- warmup + cosine(step)
        grad_accum micro-batches: loss = loss_fn(model, batch) / grad_accum; backward (bf16 autocast on CUDA)
        clip grad norm; AdamW step
        log every `log_every`; eval every `eval_every`; checkpoint every `checkpoint_every`

`RUN/metrics.jsonl` gets one JSON line per logged step (`{"step", "loss", "lr", "grad_norm"}`)
and per eval (`{"step", "eval": {...}}`). With `resume=True` a run directory that has a
checkpoint continues from the newest complete one: model, optimizer, RNG and data position are
restored. The log is only ever appended to (never truncated): each start writes
`{"start": STEP}`, and `read_metrics` drops the lines an interrupted run wrote past the step a
later start resumed from, so the log reads as one run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from speechtok.trainers.data import BatchLoader
from speechtok.trainers.mixing import MixLoader


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Optimisation and bookkeeping of a run (steps are optimizer steps).

    Attributes:
        max_steps: optimizer steps in the whole run.
        lr, min_lr, warmup_steps: linear warmup to `lr`, then cosine decay to `min_lr` at max_steps.
        weight_decay, beta1, beta2: AdamW (decay only on >= 2-D parameters, as nanoGPT).
        grad_accum: micro-batches per optimizer step. clip: max grad norm (0 = off).
        amp: "auto" (bf16 autocast on CUDA, fp32 elsewhere), "bf16" or "off".
        log_every, eval_every, checkpoint_every: in steps (0 = never; a final checkpoint is always written).
        keep_checkpoints: how many checkpoints to keep. seed: torch seed at the start of a fresh run.
        device: "cpu", "cuda", "cuda:1", ... ("auto" = cuda when available).
        trainable_only: checkpoint only parameters that train (for LoRA on a large frozen LM).
    """

    max_steps: int
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_accum: int = 1
    clip: float = 1.0
    amp: str = "auto"
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    trainable_only: bool = False

    def validate(self) -> None:
        if self.max_steps < 1:
            raise ConfigError("max_steps", self.max_steps, "must be greater than or equal to 1")
        if self.grad_accum < 1:
            raise ConfigError("grad_accum", self.grad_accum, "must be >= 1")
        if not self.lr > 0:  # also NaN
            raise ConfigError("lr", self.lr, "must be > 0")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError("min_lr", self.min_lr, f"must be in [0, lr={self.lr}]")
        resolve_device(self.device, check_available=False)
        if self.amp not in ("auto", "bf16", "off"):
            raise ConfigError("amp", self.amp, "must be one of auto, bf16, off")
        for name in ("warmup_steps", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(name, getattr(self, name), "must be >= 0")

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def resolve_device(name: str, *, field: str = "device", check_available: bool = True) -> torch.device:
    """``torch.device(name)``; `ConfigError` naming `field` for a name torch does not know ("tpu"
    was a RuntimeError at the first ``.to``) or, with `check_available`, CUDA on a machine without
    it (a "Found no NVIDIA driver" traceback). ``"auto"``: CUDA when it is there, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(field, name, "must be 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if check_available and device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(field, name, "must be a device this machine has (no usable CUDA device here; "
                          "use 'cpu' or 'auto')")
    return device


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup, then cosine to `min_lr`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.max_steps - cfg.warmup_steps, 1)
    ratio = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: nn.Module, cfg: LoopConfig) -> torch.optim.AdamW:
    """AdamW over trainable parameters; weight decay on matrices only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("model", "no trainable parameters", "must have at least one parameter that trains")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _autocast(device: torch.device, amp: str) -> Any:
    on = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of `RUN/metrics.jsonl` as one run: a `{"start": s}` line drops the records of
    steps >= s written before it (an interrupted run's tail). A torn last line (a kill mid-write)
    is ignored.

    Returns:
        dicts `{"step", "loss", "lr", "grad_norm"}` / `{"step", "eval"}` in step order of the run.
    """
    path = Path(run_dir) / "metrics.jsonl"
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i >= len(lines) - 2:  # the last line, cut by a kill
                continue
            raise
        if "start" in rec:
            out = [r for r in out if r["step"] < rec["start"]]
        else:
            out.append(rec)
    return out


def _append_line(log: Any, rec: dict[str, Any]) -> None:
    log.write(json.dumps(rec) + "\n")
    log.flush()


@dataclass
class RunResult:
    """What `train` returns: the last step, losses per logged step, the last eval, wall seconds."""

    step: int
    losses: dict[int, float]
    last_eval: dict[str, float]
    wall_s: float


def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], loader: BatchLoader | MixLoader,
          cfg: LoopConfig, run_dir: Path, *, eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
          resume: bool = True, extra: dict[str, Any] | None = None) -> RunResult:
    """Trains `model` for `cfg.max_steps` optimizer steps; see the module docstring.

    Args:
        loss_fn: `(model, batch) -> scalar loss`; moves the batch to the model's device itself.
        eval_fn: `model -> {name: value}`, called in eval mode under `torch.no_grad()`.
        extra: JSON-able facts stored in every checkpoint (e.g. the recipe).
    """
    cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = cfg.torch_device()
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    log_path = run_dir / "metrics.jsonl"
    start = 0
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        loader.load_state_dict(state.data)
        start = state.step
    else:
        torch.manual_seed(cfg.seed)
    losses: dict[int, float] = {}
    last_eval: dict[str, float] = {}
    t0 = time.perf_counter()
    with log_path.open("a") as log:
        if log.tell() > 0:  # a torn line of a killed run must not glue onto the marker
            with log_path.open("rb") as fh:
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    log.write("\n")
        _append_line(log, {"start": start})
        for step in range(start, cfg.max_steps):
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            total = 0.0
            for _ in range(cfg.grad_accum):
                batch = next(loader)
                with _autocast(device, cfg.amp):
                    loss = loss_fn(model, batch) / cfg.grad_accum
                loss.backward()
                total += float(loss.detach())
            params = [p for g in optimizer.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip) if cfg.clip > 0 else torch.tensor(0.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses[step] = total
            done = step + 1
            if cfg.log_every and (step % cfg.log_every == 0 or done == cfg.max_steps):
                _append_line(log, {"step": step, "loss": total, "lr": lr, "grad_norm": float(norm)})
            if eval_fn is not None and cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.max_steps):
                model.eval()
                with torch.no_grad(), _autocast(device, cfg.amp):
                    last_eval = eval_fn(model)
                _append_line(log, {"step": step, "eval": last_eval})
            if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or done == cfg.max_steps:
                os.fsync(log.fileno())  # the log is durable up to every checkpoint
                save_checkpoint(run_dir, done, model, optimizer, data=loader.state_dict(), extra=extra,
                                trainable_only=cfg.trainable_only, keep=cfg.keep_checkpoints)
    return RunResult(step=cfg.max_steps, losses=losses, last_eval=last_eval, wall_s=time.perf_counter() - t0)
