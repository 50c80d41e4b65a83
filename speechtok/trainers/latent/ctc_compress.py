"""CTC compression (Gaido et al., 2021): shorten encoder frames with a CTC head's posteriors.

Three strategies, all on the greedy CTC label of each frame:
    "remove_blank"  keep only frames whose most likely label is not blank.
    "average"       average the frames of each run of equal labels (blank runs are runs too).
    "threshold"     drop frames whose blank probability exceeds `threshold`.
A row whose every frame would be dropped keeps its least-blank frame, so no output is empty.
"""

from __future__ import annotations

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.lengths import lengths_to_mask
from speechtok.trainers.latent.adapter_base import Adapter, PostNet

STRATEGIES = ("remove_blank", "average", "threshold")


def ctc_compress(x: torch.Tensor, log_probs: torch.Tensor, lengths: torch.Tensor, *, strategy: str, blank: int = 0,
                 threshold: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Compresses frames by their CTC posteriors.

    Args:
        x: `(B, T, D)` float frames, right-padded.
        log_probs: `(B, T, V)` CTC log-posteriors (or logits: only argmax and softmax are used).
        lengths: `(B,)` int64 valid frames.
    Returns:
        `(B, T', D)` frames (mean of each kept segment; zeros past a row's length) and
        `(B,)` int64 new lengths.
    """
    if strategy not in STRATEGIES:
        raise ConfigError("ctc_strategy", strategy, f"must be one of {STRATEGIES}")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError("ctc_threshold", threshold, "must be in (0, 1]")
    b, t, d = x.shape
    valid = lengths_to_mask(lengths, t)  # (B, T)
    probs = log_probs.float().softmax(-1)  # (B, T, V)
    labels = probs.argmax(-1)  # (B, T)
    p_blank = probs[..., blank]  # (B, T)
    if strategy == "remove_blank":
        keep = valid & (labels != blank)
        starts = keep
    elif strategy == "threshold":
        keep = valid & (p_blank <= threshold)
        starts = keep
    else:
        keep = valid
        changed = torch.ones_like(labels, dtype=torch.bool)
        changed[:, 1:] = labels[:, 1:] != labels[:, :-1]
        starts = valid & changed
    # rows left empty keep their least-blank valid frame
    empty = ~keep.any(1) & (lengths > 0)
    if empty.any():
        best = p_blank.masked_fill(~valid, float("inf")).argmin(1)  # (B,)
        rows = empty.nonzero().squeeze(1)
        keep = keep.clone()
        starts = starts.clone()
        keep[rows, best[rows]] = True
        starts[rows, best[rows]] = True
    new_lengths = starts.sum(1)  # (B,)
    t_out = max(int(new_lengths.max().item()) if b else 0, 1)
    seg = starts.long().cumsum(1) - 1  # (B, T): output index of each frame
    seg = torch.where(keep, seg, torch.full_like(seg, t_out))  # dropped frames -> dummy slot
    sums = x.new_zeros(b, t_out + 1, d).scatter_add_(1, seg.unsqueeze(-1).expand(b, t, d), x)
    counts = x.new_zeros(b, t_out + 1).scatter_add_(1, seg, keep.to(x.dtype))
    out = sums[:, :t_out] / counts[:, :t_out].clamp(min=1).unsqueeze(-1)  # (B, T', D)
    return out, new_lengths


class CTCCompressor(Adapter):
    """Adapter: `ctc_head(x)` -> `ctc_compress` -> post-net. The head is shared with the encoder
    (its CTC loss trains it); the compressor itself only adds the post-net's parameters."""

    def __init__(self, in_dim: int, out_dim: int, *, ctc_head: nn.Module, blank: int = 0, strategy: str = "average",
                 threshold: float = 0.95, post: str = "linear") -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ConfigError("ctc_strategy", strategy, f"must be one of {STRATEGIES}")
        self.out_dim = out_dim
        self.strategy, self.blank, self.threshold = strategy, blank, threshold
        self.ctc_head = ctc_head
        self.post = PostNet(in_dim, out_dim, post)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            logits = self.ctc_head(x)  # (B, T, V)
        y, new = ctc_compress(x, logits, lengths, strategy=self.strategy, blank=self.blank, threshold=self.threshold)
        return self.post(y, new), new
