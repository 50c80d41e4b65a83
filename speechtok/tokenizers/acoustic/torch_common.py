"""Torch helpers the EnCodec and DAC wrappers share: safe checkpoint loading, weight-norm
folding, inference preparation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechtok.errors import InputError


def load_checkpoint(path: str | Path) -> Any:
    """Reads a torch checkpoint with ``weights_only=True`` (never unpickles code).

    Raises:
        InputError: the file is missing, or holds objects beyond tensors and plain containers
            (then it is not a weights file; convert it with the codec's own tools first).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "checkpoint file does not exist")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError with details
        raise InputError(
            str(p),
            f"cannot be read as a weights-only checkpoint ({type(e).__name__}: {e}); "
            "speechtok never unpickles code: re-save it as a plain state dict",
        ) from e


def fold_weight_norm(model: nn.Module) -> int:
    """Replaces every weight-norm reparametrisation by the weight it computes, once.

    ``torch.nn.utils.weight_norm`` recomputes ``g * v / ||v||`` before each forward; folding
    computes the same tensor with the same function once, so outputs are bit-identical and the
    per-call overhead goes away. Returns the number of layers folded.
    """
    n = 0
    for module in model.modules():
        if hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            torch.nn.utils.remove_weight_norm(module)
            n += 1
    return n


def prepare_for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """eval mode, no grad on parameters, weight norm folded, moved to `device`."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    fold_weight_norm(model)
    return model.to(device)
