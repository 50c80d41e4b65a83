"""Speech encoders for the latent family, each with a CTC head.

- `FbankEncoder`: trained from scratch on filterbanks: per-utterance mean/variance
  normalisation -> 2 x Conv2d(stride 2) subsampling (4x fewer frames) -> Transformer or
  Conformer (`ConformerBlock`, padding-safe) layers -> `(B, T/4, dim)`.
- `FeatureEncoder`: precomputed features (SSL layers, Whisper encoder states read from shards)
  -> a linear projection; the pretrained encoder already ran in the pipeline.

Both: `forward(feats (B, T, D) float, lengths (B,) int64) -> (h (B, T', dim), lengths (B,))`,
and `ctc_head: Linear(dim, vocab)` whose logits train with `ctc_loss` (blank = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.models.lengths import lengths_to_mask, zero_padding


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """Attributes:
    kind: "fbank" (from scratch) | "features" (precomputed, projection only) | "identity" (precomputed,
        passed on unchanged: ``dim`` is the features' own; only the CTC head is trained. For an LLM that
        already reads these features, e.g. Whisper encoder states as the memory of Whisper's decoder).
    arch: "transformer" | "conformer" (fbank kind).
    dim, num_layers, num_heads, ff_mult, dropout: sizes of the layers.
    """

    kind: str = "fbank"
    arch: str = "transformer"
    dim: int = 144
    num_layers: int = 4
    num_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1

    def validate(self) -> None:
        if self.kind not in ("fbank", "features", "identity"):
            raise ConfigError("encoder.kind", self.kind, "must be 'fbank', 'features' or 'identity'")
        if self.arch not in ("transformer", "conformer"):
            raise ConfigError("encoder.arch", self.arch, "must be 'transformer' or 'conformer'")
        if self.kind == "fbank" and self.dim % self.num_heads:  # only the fbank encoder has attention
            raise ConfigError("encoder.dim", self.dim, f"must be a multiple of num_heads={self.num_heads}")


def sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """`(length, dim)` sinusoidal position encodings."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * inv)
    out[:, 1::2] = torch.cos(pos * inv)[:, : dim // 2]
    return out


class ConformerBlock(nn.Module):
    """Conformer block (Gulati et al. 2020): FFN/2, self-attention, convolution module, FFN/2.

    Padding frames are zeroed before the depthwise convolution and LayerNorm replaces its
    BatchNorm, so padded and unpadded rows give the same valid outputs (torchaudio's Conformer
    lets padding leak into the convolution)."""

    def __init__(self, cfg: EncoderConfig, kernel: int = 15) -> None:
        super().__init__()
        d, ff = cfg.dim, cfg.ff_mult * cfg.dim

        def ffn() -> nn.Sequential:
            return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ff), nn.SiLU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(ff, d))

        self.ff1, self.ff2 = ffn(), ffn()
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, cfg.num_heads, dropout=cfg.dropout, batch_first=True)
        self.conv_norm = nn.LayerNorm(d)
        self.pointwise1 = nn.Conv1d(d, 2 * d, 1)
        self.depthwise = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.depth_norm = nn.LayerNorm(d)
        self.pointwise2 = nn.Conv1d(d, d, 1)
        self.drop = nn.Dropout(cfg.dropout)
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """x `(B, T, D)`, pad `(B, T)` bool (True = padding) -> `(B, T, D)`."""
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        x = x + 0.5 * self.drop(self.ff1(x))
        h = self.attn_norm(x)
        x = x + self.drop(self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0])
        h = nn.functional.glu(self.pointwise1((self.conv_norm(x) * keep).transpose(1, 2)), dim=1)  # (B, D, T)
        h = self.depthwise(h * keep.transpose(1, 2))
        h = nn.functional.silu(self.depth_norm(h.transpose(1, 2)))  # (B, T, D)
        x = x + self.drop(self.pointwise2(h.transpose(1, 2)).transpose(1, 2))
        x = x + 0.5 * self.drop(self.ff2(x))
        return self.out_norm(x) * keep


class SpeechEncoder(nn.Module):
    """Base: `forward(feats, lengths) -> (h (B, T', dim), lengths)`; `ctc_head` maps `dim` -> vocab."""

    dim: int
    ctc_head: nn.Linear


class FbankEncoder(SpeechEncoder):
    """From-scratch encoder on `(B, T, num_mel_bins)` filterbanks; 4x subsampling."""

    def __init__(self, in_dim: int, vocab: int, cfg: EncoderConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg, self.dim = cfg, cfg.dim
        c = 32
        self.conv1 = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        freq = (in_dim + 1) // 2
        freq = (freq + 1) // 2
        self.proj = nn.Linear(c * freq, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers: nn.Module
        if cfg.arch == "conformer":
            self.layers = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.num_layers))
        else:
            layer = nn.TransformerEncoderLayer(cfg.dim, cfg.num_heads, cfg.ff_mult * cfg.dim, cfg.dropout,
                                               batch_first=True, norm_first=True)
            self.layers = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.ctc_head = nn.Linear(cfg.dim, vocab)

    @staticmethod
    def _sub(lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths - 1, 2, rounding_mode="floor") + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = lengths_to_mask(lengths, feats.shape[1]).unsqueeze(-1).float()  # (B, T, 1)
        n = lengths.clamp(min=1)[:, None, None].float()
        mean = (feats * mask).sum(1, keepdim=True) / n
        var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
        x = (feats - mean) / (var + 1e-5).sqrt() * mask  # (B, T, F), zero padding
        x = nn.functional.gelu(self.conv1(x.unsqueeze(1)))  # (B, C, T/2, F/2)
        l1 = self._sub(lengths)
        x = x * lengths_to_mask(l1, x.shape[2])[:, None, :, None].float()
        x = nn.functional.gelu(self.conv2(x))  # (B, C, T/4, F/4)
        l2 = self._sub(l1)
        b, c, t, f = x.shape
        x = self.proj(x.permute(0, 2, 1, 3).reshape(b, t, c * f))  # (B, T/4, dim)
        x = self.drop(x + sinusoids(t, self.dim, x.device))
        x = zero_padding(x, l2)
        pad = ~lengths_to_mask(l2, t)
        if isinstance(self.layers, nn.ModuleList):
            for block in self.layers:
                x = block(x, pad)
        else:
            x = self.layers(x, src_key_padding_mask=pad)
        return self.norm(x), l2


class FeatureEncoder(SpeechEncoder):
    """Precomputed features (e.g. Whisper encoder states) `(B, T, D)` -> `Linear(D, dim)` -> LayerNorm
    `(B, T, dim)`; kind "identity": the features unchanged (`dim` = D), a CTC head on them."""

    def __init__(self, in_dim: int, vocab: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.dim = in_dim if cfg.kind == "identity" else cfg.dim
        self.proj: nn.Module = nn.Identity() if cfg.kind == "identity" else nn.Sequential(
            nn.Linear(in_dim, cfg.dim), nn.GELU(), nn.Dropout(cfg.dropout), nn.LayerNorm(cfg.dim))
        self.ctc_head = nn.Linear(self.dim, vocab)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return zero_padding(self.proj(feats), lengths), lengths


def build_encoder(cfg: EncoderConfig, in_dim: int, vocab: int) -> SpeechEncoder:
    """The encoder of `cfg.kind` for `in_dim` input features and a CTC vocabulary of `vocab` (blank 0)."""
    cfg.validate()
    return FbankEncoder(in_dim, vocab, cfg) if cfg.kind == "fbank" else FeatureEncoder(in_dim, vocab, cfg)


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean CTC loss (blank 0) of `(B, T, V)` logits against label sequences (ids >= 1)."""
    logp = torch.log_softmax(logits.float(), -1).transpose(0, 1)  # (T, B, V)
    flat = torch.cat(targets).to(logits.device)
    tl = torch.tensor([len(t) for t in targets], device=logits.device)
    return nn.functional.ctc_loss(logp, flat, lengths, tl, blank=0, zero_infinity=True)


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Greedy CTC decoding: argmax, collapse repeats, drop blanks (0); one id list per row."""
    best = logits.argmax(-1).cpu()
    out = []
    for b in range(best.shape[0]):
        seq = best[b, : int(lengths[b])].tolist()
        out.append([s for k, s in enumerate(seq) if s != 0 and (k == 0 or s != seq[k - 1])])
    return out
