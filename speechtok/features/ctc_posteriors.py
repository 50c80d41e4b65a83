"""Per-frame CTC log-posteriors (blank included) from any torch CTC model, for CTC-compression
adapters.

The model is any callable ``model(feats, lengths) -> logits`` with ``feats`` (B, T, F) float32,
``lengths`` (B,) int64 and logits (B, T', V) (a tuple's first element, or an object with a
``logits`` attribute, is accepted too); an optional third output or a ``model.output_lengths``
method gives T'_i. We apply ``log_softmax`` over V in float32 and store float16, so
``exp(logp).sum(-1)`` is 1 up to float16 rounding. Signals are padded to the batch's longest;
each output is cropped to its own length. Padding is exact only for models that mask it (or
have a receptive field that does not cross the end); `bucket_exact=True` batches only equal
lengths for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.features.batching import exact_length_buckets, padded_buckets
from speechtok.features.checksum import tensor_checksum


@dataclass(frozen=True, kw_only=True)
class CTCPosteriorConfig:
    """Options of CTC posterior extraction.

    Attributes:
        blank: index of the blank symbol in V.
        subsampling: frames in per frame out (T' = ceil(T / subsampling)) when the model gives
            no output lengths.
        max_batch_frames: padded input frames per forward pass.
        bucket_exact: batch only inputs of equal length (for models that do not mask padding).
        device: ``"cpu"`` or ``"cuda"``.
        dtype: output dtype, ``"float16"`` (default) or ``"float32"``.
    """

    blank: int = 0
    subsampling: int = 1
    max_batch_frames: int = 20_000
    bucket_exact: bool = False
    device: str = "cpu"
    dtype: str = "float16"

    def validate(self) -> None:
        check_at_least(0, blank=self.blank)
        check_at_least(1, subsampling=self.subsampling, max_batch_frames=self.max_batch_frames)
        if self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ConfigError("device", self.device, "must be 'cpu' or 'cuda'")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError("dtype", self.dtype, "must be 'float16' or 'float32'")


def _logits_of(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, (tuple, list)):
        lengths = out[1] if len(out) > 1 and isinstance(out[1], torch.Tensor) else None
        return out[0], lengths
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits, getattr(out, "lengths", None)
    raise InputError("model output", f"expected logits (B, T', V), got {type(out).__name__}")


def ctc_log_posteriors(
    model: Callable[..., Any],
    feats: Sequence[np.ndarray],
    cfg: CTCPosteriorConfig | None = None,
) -> list[np.ndarray]:
    """Per-frame log-posteriors of a CTC model, blank included.

    Args:
        model: ``model(x (B, T, F) float32, lengths (B,) int64) -> logits (B, T', V)``
            (or ``(logits, out_lengths)``); put in eval mode here if it is an ``nn.Module``.
        feats: per cut (T_i, F) float features (float16 is upcast).
        cfg: options (blank index, batching, device, dtype).

    Returns:
        One array (T'_i, V) of cfg.dtype per cut: ``log_softmax(logits)``; column ``cfg.blank``
        is the blank's log-probability.
    """
    cfg = cfg or CTCPosteriorConfig()
    cfg.validate()
    if isinstance(model, torch.nn.Module):
        model.eval()
    dims = {np.asarray(f).shape[1] for f in feats if np.asarray(f).ndim == 2}
    for i, f in enumerate(feats):
        if np.asarray(f).ndim != 2:
            raise InputError(f"cut {i}", f"features must be (T, F), got shape {np.asarray(f).shape}")
    if len(dims) > 1:
        raise InputError("feats", f"all cuts must share one feature dimension, got {sorted(dims)}")
    lengths = [int(np.asarray(f).shape[0]) for f in feats]
    bucket = exact_length_buckets if cfg.bucket_exact else padded_buckets
    out_dtype = np.float16 if cfg.dtype == "float16" else np.float32
    result: list[np.ndarray | None] = [None] * len(feats)
    dev = torch.device(cfg.device)
    nonempty = [i for i, n in enumerate(lengths) if n > 0]
    with torch.inference_mode():
        for batch_local in bucket([lengths[i] for i in nonempty], cfg.max_batch_frames):
            batch = [nonempty[j] for j in batch_local]
            longest = max(lengths[i] for i in batch)
            dim = np.asarray(feats[batch[0]]).shape[1]
            x = torch.zeros((len(batch), longest, dim), dtype=torch.float32)  # (B, T, F)
            for row, i in enumerate(batch):
                x[row, : lengths[i]] = torch.from_numpy(np.asarray(feats[i], dtype=np.float32))
            lens = torch.tensor([lengths[i] for i in batch], dtype=torch.int64)
            logits, out_lens = _logits_of(model(x.to(dev), lens.to(dev)))
            if logits.ndim != 3 or logits.shape[0] != len(batch):
                raise InputError("model output", f"logits must be (B={len(batch)}, T', V), got {tuple(logits.shape)}")
            if not 0 <= cfg.blank < logits.shape[2]:
                raise ConfigError("blank", cfg.blank, f"must be < the model's vocabulary size {logits.shape[2]}")
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # (B, T', V)
            if out_lens is None and hasattr(model, "output_lengths"):
                out_lens = model.output_lengths(lens)
            for row, i in enumerate(batch):
                t = (int(out_lens[row]) if out_lens is not None
                     else -(-lengths[i] // cfg.subsampling))
                result[i] = logp[row, : min(t, logp.shape[1])].numpy().astype(out_dtype)
    vocab = None
    for r in result:
        if r is not None:
            vocab = r.shape[1]
            break
    return [r if r is not None else np.zeros((0, vocab or 0), dtype=out_dtype) for r in result]


def ctc_group_meta_fields(
    model: torch.nn.Module, *, input_frame_rate: float, subsampling: int, vocab_size: int, dtype: str = "float16"
) -> dict[str, Any]:
    """`GroupMeta` fields for a CTC posteriors group: frame rate, dim (= V), dtype, checksum."""
    return {"frame_rate": input_frame_rate / subsampling, "dim": vocab_size, "vocab_size": vocab_size,
            "dtype": dtype, "model_checksum": tensor_checksum(dict(model.state_dict()))}
