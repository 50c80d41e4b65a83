"""The cuts a card is measured on: a speechtok shard output (``--corpus OUT``, its ``cuts``
group), or a Kaldi-style directory (``wav.scp`` + ``text`` [+ ``utt2spk``]), read as 16 kHz mono.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset

SR = 16_000


@dataclass(frozen=True)
class CardCut:
    """One cut: id, 16 kHz float32 wave (S,), transcript ("" when unknown), speaker."""

    id: str
    wave: np.ndarray
    text: str
    speaker: str


def _resample(w: np.ndarray, sr: int) -> np.ndarray:
    if sr == SR:
        return w.astype(np.float32)
    # lazy: lhotse (and torch with it) takes seconds to import
    from lhotse.augmentation import Resample

    return Resample(sr, SR)(w[None])[0].astype(np.float32)


def _kaldi(root: Path, max_cuts: int) -> list[CardCut]:
    def table(name: str) -> dict[str, str]:
        p = root / name
        if not p.is_file():
            return {}
        out: dict[str, str] = {}
        for line in p.read_text().splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                out[key] = value.strip()
        return out

    scp, text, spk = table("wav.scp"), table("text"), table("utt2spk")
    out = []
    for utt in sorted(scp)[:max_cuts]:
        path = Path(scp[utt].strip())
        path = path if path.is_absolute() else root / path
        try:
            w, sr = sf.read(path, dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(str(path), f"unreadable audio for {utt} ({exc})") from exc
        out.append(CardCut(utt, _resample(w[:, 0], int(sr)), text.get(utt, "").strip(), spk.get(utt, "")))
    return out


def _shards(out_dir: Path, max_cuts: int) -> list[CardCut]:
    # lazy: lhotse (and torch) take seconds to import
    from lhotse.serialization import deserialize_item


    ds = ShardDataset(out_dir, groups=("cuts",))
    out = []
    for i in range(min(len(ds), max_cuts)):
        row = ds[i]
        raw = row.get("cut")
        if not raw:
            raise InputError(f"{out_dir} row {i}", "has no `cut` column to load audio from")
        cut = deserialize_item(json.loads(raw) if isinstance(raw, str) else raw)
        w = cut.resample(SR).load_audio()[0]
        out.append(CardCut(str(row["id"]), np.asarray(w, np.float32), str(row.get("text") or ""),
                           str(row.get("speaker") or "")))
    return out


def load_corpus(path: str | Path, max_cuts: int = 40) -> list[CardCut]:
    """The first `max_cuts` cuts of a shard output dir (``index.json``/``index.d``) or a Kaldi dir.

    Raises:
        InputError: neither layout, or no cut.
    """
    root = Path(path)
    if (root / "index.json").is_file() or (root / "index.d").is_dir():
        cuts = _shards(root, max_cuts)
    elif (root / "wav.scp").is_file():
        cuts = _kaldi(root, max_cuts)
    else:
        raise InputError(str(root), "is neither a speechtok shard output (index.json) nor a Kaldi dir (wav.scp)")
    if not cuts:
        raise InputError(str(root), "holds no cut")
    return cuts
