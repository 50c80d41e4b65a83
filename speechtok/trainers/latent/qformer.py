"""Q-Former adapter (BLIP-2, SALMONN): learned queries cross-attend to the encoder frames.

With `window` frames per window (SALMONN's window-level Q-Former), each window of a row gets
`num_queries` outputs: `(B, T, D)` -> `(B, ceil(T / window) * num_queries, D')`. Without a
window the whole input is one window and every row gets `num_queries` outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.lengths import lengths_to_mask
from speechtok.trainers.latent.adapter_base import Adapter


class QFormerLayer(nn.Module):
    """Pre-norm block: query self-attention, cross-attention to frames, feed-forward."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.n1, self.n2, self.n3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor, kv_pad: torch.Tensor) -> torch.Tensor:
        h = self.n1(q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]  # (N, Q, D)
        q = q + self.cross_attn(self.n2(q), kv, kv, key_padding_mask=kv_pad, need_weights=False)[0]
        return q + self.ff(self.n3(q))


class QFormer(Adapter):
    """`num_queries` learned queries per window of `window` frames (or per input when None)."""

    def __init__(self, in_dim: int, out_dim: int, *, num_queries: int = 4, window: int | None = 25,
                 num_layers: int = 2, num_heads: int = 4) -> None:
        super().__init__()
        if num_queries < 1:
            raise ConfigError("num_queries", num_queries, "must be >= 1")
        if window is not None and window < 1:
            raise ConfigError("window", window, "must be >= 1 frames (or 0/None for no windows)")
        if out_dim % num_heads:
            raise ConfigError("num_heads", num_heads, f"must divide the output dim {out_dim}")
        self.out_dim, self.num_queries, self.window = out_dim, num_queries, window
        self.kv_proj = nn.Linear(in_dim, out_dim)
        self.queries = nn.Parameter(torch.randn(num_queries, out_dim) * 0.02)
        self.layers = nn.ModuleList(QFormerLayer(out_dim, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        w = self.window or max(t, 1)
        n_win = max(-(-t // w), 1)
        kv = nn.functional.pad(self.kv_proj(x), (0, 0, 0, n_win * w - t))  # (B, nW*W, D')
        kv = kv.reshape(b * n_win, w, self.out_dim)  # (B*nW, W, D')
        pad = ~lengths_to_mask(lengths, n_win * w).reshape(b * n_win, w)  # (B*nW, W) True = padding
        pad = pad & ~pad.all(1, keepdim=True)  # all-padding windows attend to anything (output unused)
        q = self.queries.unsqueeze(0).expand(b * n_win, -1, -1)  # (B*nW, Q, D')
        for layer in self.layers:
            q = layer(q, kv, pad)
        y = self.norm(q).reshape(b, n_win * self.num_queries, self.out_dim)  # (B, nW*Q, D')
        if self.window:
            new = torch.div(lengths + w - 1, w, rounding_mode="floor").clamp(min=1) * self.num_queries
        else:
            new = torch.full_like(lengths, self.num_queries)
        return y, new
