"""Training loop: schedule, accumulation, checkpoints without pickle, kill-and-resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from toy_task import ToyNet, toy_collate, toy_items, toy_loss

from speechtok.models.checkpoint import latest_checkpoint
from speechtok.trainers.data import BatchingConfig, BatchLoader
from speechtok.trainers.loop import LoopConfig, lr_at, read_metrics, train


class _Crash(Exception):
    pass


def _loss(crash_at: int | None, seen: list[int]) -> Any:
    def fn(model: nn.Module, batch: Any) -> torch.Tensor:
        seen.append(1)
        if crash_at is not None and len(seen) > crash_at:
            raise _Crash  # the process dies in the middle of a step
        return toy_loss(model, batch)

    return fn


def _run(run_dir: Path, crash_at: int | None = None, steps: int = 24) -> dict[int, float]:
    items, lengths = toy_items(120, 20)
    loader = BatchLoader(items, lengths, toy_collate, BatchingConfig(max_tokens=120, seed=5))
    cfg = LoopConfig(max_steps=steps, lr=3e-3, warmup_steps=4, grad_accum=2, log_every=1,
                     eval_every=6, checkpoint_every=5, seed=11, device="cpu")
    torch.manual_seed(999)  # a different init: the checkpoint must override it on resume
    model = ToyNet(32, 0.3)
    result = train(model, _loss(crash_at, []), loader, cfg, run_dir,
                   eval_fn=lambda m: {"w": float(m.net[0].weight.sum())})
    return result.losses


def _logged(run_dir: Path) -> list[dict[str, Any]]:
    return read_metrics(run_dir)


def test_kill_and_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    full = _run(tmp_path / "full")
    with pytest.raises(_Crash):
        _run(tmp_path / "killed", crash_at=2 * 13 + 1)  # dies inside step 13; last checkpoint at 10
    assert latest_checkpoint(tmp_path / "killed").name == "step_0000010"
    resumed = _run(tmp_path / "killed")
    assert sorted(resumed) == list(range(10, 24))
    for step in range(10, 24):
        assert resumed[step] == full[step], step  # bit-identical on CPU
    # the log of the resumed run reads as one run and equals the uninterrupted log
    assert _logged(tmp_path / "killed") == _logged(tmp_path / "full")
    # loss went down
    assert np.mean([full[s] for s in range(20, 24)]) < np.mean([full[s] for s in range(0, 4)])


def test_checkpoint_has_no_pickle(tmp_path: Path) -> None:
    _run(tmp_path, steps=5)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == ["model.safetensors", "optimizer.json", "optimizer.safetensors", "rng.safetensors", "trainer.json"]
    meta = json.loads((ckpt / "trainer.json").read_text())
    assert meta["step"] == 5 and set(meta["data"]) == {"epoch", "batch"}


def test_lr_schedule() -> None:
    cfg = LoopConfig(max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0) and lr_at(100, cfg) == pytest.approx(0.1)
    values = [lr_at(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(("changes", "message"), [
    ({"lr": -1.0}, "`lr` must be > 0, but is -1.0"),  # was "`min_lr` must be in [0, lr=-1]"
    ({"lr": float("nan")}, "`lr` must be > 0"),
    ({"device": "tpu"}, "`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', but is 'tpu'"),  # a torch RuntimeError
])
def test_loop_config_names_a_bad_lr_or_device(changes: dict[str, Any], message: str) -> None:
    from speechtok.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        LoopConfig(max_steps=2, **changes).validate()
    assert str(err.value).startswith(message)


def test_cuda_without_cuda_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from speechtok.errors import ConfigError
    from speechtok.trainers.loop import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    LoopConfig(max_steps=2, device="cuda:1").validate()  # a valid name: checked against the machine when used
    with pytest.raises(ConfigError, match="no usable CUDA device here"):
        LoopConfig(max_steps=2, device="cuda").torch_device()  # was "Found no NVIDIA driver" from deep in torch
    with pytest.raises(ConfigError, match="`--device`"):
        resolve_device("cuda", field="--device")
    assert resolve_device("auto") == torch.device("cpu") == LoopConfig(max_steps=2, device="auto").torch_device()
