"""Padding masks for right-padded batches `(B, T, ...)` with per-row lengths `(B,)`."""

from __future__ import annotations

import torch


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """`(B,)` lengths -> `(B, max_len)` bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x` `(B, T, D)` with frames past each row's length set to 0."""
    return x * lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
