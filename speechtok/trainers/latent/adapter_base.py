"""The adapter interface and the post-net every adapter may end with (see `adapters`)."""

from __future__ import annotations

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.lengths import lengths_to_mask

POSTS = ("none", "linear", "transformer")


class Adapter(nn.Module):
    """Base class: `forward(x (B,T,D), lengths (B,)) -> (y (B,T',D'), new_lengths (B,))`."""

    out_dim: int

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class PostNet(nn.Module):
    """Optional projection after downsampling: identity, a linear layer, or linear + Transformer."""

    def __init__(self, in_dim: int, out_dim: int, kind: str, *, num_heads: int = 4, num_layers: int = 1) -> None:
        super().__init__()
        if kind not in POSTS:
            raise ConfigError("post", kind, f"must be one of {POSTS}")
        if kind == "none" and in_dim != out_dim:
            raise ConfigError("post", kind, f"cannot map {in_dim} -> {out_dim} dims; use 'linear'")
        self.kind = kind
        self.proj = nn.Identity() if kind == "none" else nn.Linear(in_dim, out_dim)
        self.encoder: nn.TransformerEncoder | None = None
        if kind == "transformer":
            layer = nn.TransformerEncoderLayer(out_dim, num_heads, dim_feedforward=2 * out_dim, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)  # (B, T, D')
        if self.encoder is not None:
            pad = ~lengths_to_mask(lengths, y.shape[1])
            y = self.encoder(y, src_key_padding_mask=pad)
        return y
