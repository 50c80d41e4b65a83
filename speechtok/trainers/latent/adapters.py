"""Modality adapters: encoder frames `(B, T, D)` -> LLM-sized embeddings `(B, T', D')`.

Every adapter has one interface, `forward(x, lengths) -> (y, new_lengths)`:
    x: `(B, T, D)` float, right-padded; lengths: `(B,)` int64 valid frames per row.
    y: `(B, T', D')` float; new_lengths: `(B,)` int64. Rows past `new_lengths[b]` are padding
    (zeros or junk; never read). Padding never changes a valid output: a batched forward equals
    each row's unpadded forward (tests check it for every adapter).

Adapters here: `FrameStack` (kernel = stride), `StridedConv`; `CTCCompressor` lives in
`ctc_compress.py`, `QFormer` in `qformer.py` (all on `adapter_base.Adapter`); `build_adapter`
makes any of them from a config.
Each optionally ends with a post-net: "none", "linear" or a small Transformer ("transformer").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.lengths import zero_padding
from speechtok.trainers.latent.adapter_base import POSTS, Adapter, PostNet
from speechtok.trainers.latent.ctc_compress import CTCCompressor
from speechtok.trainers.latent.qformer import QFormer


class FrameStack(Adapter):
    """Concatenates every `k` consecutive frames: `(B, T, D)` -> `(B, ceil(T/k), k*D)` -> post-net.

    The last group of a row is completed with zero frames (in a batch, the row's padding is zeroed
    first, so it matches the unpadded forward)."""

    def __init__(self, in_dim: int, out_dim: int, *, k: int, post: str = "linear") -> None:
        super().__init__()
        if k < 1:
            raise ConfigError("k", k, "must be >= 1")
        self.k, self.out_dim = k, out_dim
        self.post = PostNet(in_dim * k, out_dim, post)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        x = zero_padding(x, lengths)
        t2 = -(-t // self.k)
        x = nn.functional.pad(x, (0, 0, 0, t2 * self.k - t))  # (B, t2*k, D)
        y = x.reshape(b, t2, self.k * d)  # (B, T', k*D)
        new = torch.div(lengths + self.k - 1, self.k, rounding_mode="floor")
        return self.post(y, new), new


class StridedConv(Adapter):
    """`num_layers` of Conv1d(kernel, stride, padding=kernel//2) + GELU, then the post-net.

    Length per layer: `L' = floor((L + 2*(kernel//2) - kernel) / stride) + 1`."""

    def __init__(self, in_dim: int, out_dim: int, *, kernel: int = 3, stride: int = 2, num_layers: int = 2,
                 post: str = "none") -> None:
        super().__init__()
        if kernel < 1 or stride < 1 or num_layers < 1:
            raise ConfigError("kernel/stride/num_layers", (kernel, stride, num_layers), "must all be >= 1")
        self.kernel, self.stride, self.pad = kernel, stride, kernel // 2
        self.out_dim = out_dim
        dims = [in_dim] + [out_dim] * num_layers
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, stride=stride, padding=self.pad)
                                   for a, b in zip(dims, dims[1:], strict=False))
        self.post = PostNet(out_dim, out_dim, post)

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + 2 * self.pad - self.kernel, self.stride, rounding_mode="floor") + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.convs:
            x = zero_padding(x, lengths)  # (B, T, D)
            x = nn.functional.gelu(conv(x.transpose(1, 2))).transpose(1, 2)  # (B, T', D')
            lengths = self.out_lengths(lengths).clamp(min=1)
        return self.post(x, lengths), lengths


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    """Which adapter and its sizes.

    Attributes:
        kind: "stack" | "conv" | "ctc" | "qformer".
        post: post-net after stack/conv/ctc: "none" | "linear" | "transformer".
        k: frame-stack factor. kernel, stride, conv_layers: strided conv.
        ctc_strategy, ctc_threshold: CTC compression ("remove_blank" | "average" | "threshold").
        num_queries, window, qformer_layers: Q-Former (window in frames; 0 = whole input).
    """

    kind: str = "stack"
    post: str = "linear"
    k: int = 4
    kernel: int = 3
    stride: int = 2
    conv_layers: int = 2
    ctc_strategy: str = "average"
    ctc_threshold: float = 0.95
    num_queries: int = 4
    window: int = 25
    qformer_layers: int = 2
    num_heads: int = 4

    def validate(self) -> None:
        if self.kind not in ("stack", "conv", "ctc", "qformer"):
            raise ConfigError("adapter.kind", self.kind, "must be one of stack, conv, ctc, qformer")
        if self.post not in POSTS:
            raise ConfigError("adapter.post", self.post, f"must be one of {POSTS}")


def build_adapter(cfg: AdapterConfig, in_dim: int, out_dim: int, *, ctc_head: nn.Module | None = None,
                  blank: int = 0) -> Adapter:
    """An adapter from `cfg` mapping `in_dim` encoder features to `out_dim` LLM embeddings.

    `ctc_head` (`(B, T, in_dim) -> (B, T, V)` logits) is required for the "ctc" kind."""
    cfg.validate()
    if cfg.kind == "stack":
        return FrameStack(in_dim, out_dim, k=cfg.k, post=cfg.post)
    if cfg.kind == "conv":
        return StridedConv(in_dim, out_dim, kernel=cfg.kernel, stride=cfg.stride, num_layers=cfg.conv_layers,
                           post="none" if cfg.post == "linear" else cfg.post)
    if cfg.kind == "ctc":
        if ctc_head is None:
            raise ConfigError("adapter.kind", cfg.kind, "needs an encoder with a CTC head")
        return CTCCompressor(in_dim, out_dim, ctc_head=ctc_head, blank=blank, strategy=cfg.ctc_strategy,
                             threshold=cfg.ctc_threshold, post=cfg.post)
    return QFormer(in_dim, out_dim, num_queries=cfg.num_queries, window=cfg.window or None,
                   num_layers=cfg.qformer_layers, num_heads=cfg.num_heads)
