"""`torch.utils.data.Dataset` adapter over `ShardDataset`.

The numpy rows of `ShardDataset` are read-only views into memory maps, and torch has few
uint16 kernels, so this adapter returns owned tensors: token ids (uint16) become int64,
float16/float32 features keep their dtype (one copy per row: torch tensors must be writable).
Strings and scalars pass through. Works with ``DataLoader(num_workers>0)``: each worker maps
the files itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from speechtok.shards.reader import ShardDataset


def to_torch(value: Any) -> Any:
    """numpy -> owned torch tensor (uint16 -> int64); other values unchanged."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint16:
            return torch.from_numpy(value.astype(np.int64))
        return torch.from_numpy(np.array(value, copy=True))
    return value


class TorchShardDataset(Dataset):  # type: ignore[type-arg]
    """Map-style torch dataset: ``ds[i] -> dict[str, torch.Tensor | str | float | None]``.

    Args: as `ShardDataset` (``out_dir``, ``groups``, ``columns``, ``checksum``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        groups: Sequence[str] = ("cuts",),
        columns: Sequence[str] | None = None,
        *,
        checksum: bool = True,
    ) -> None:
        self.shards = ShardDataset(out_dir, groups, columns, checksum=checksum)

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: to_torch(v) for k, v in self.shards[i].items()}

    def lengths(self, group: str) -> np.ndarray:
        """Frames per row of `group` (see `ShardDataset.lengths`), for bucketing samplers."""
        return self.shards.lengths(group)
