"""The audio of one exported row: the original file when the cut is a whole file, else its
samples cut out (and resampled, and read from an in-place source) by lhotse, as FLAC.

Formats that need "one audio file per utterance" (ESPnet's ``wav.scp``, a Hugging Face
``Audio`` column) use these helpers; a cut that is a segment of its recording, or whose
recording is not a plain file (a Hugging Face dataset referenced in place, a resampled cut),
is written as 24-bit FLAC (lossless for 16-bit sources).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from speechtok.errors import InputError
from speechtok.paths import file_stem_for_id


def whole_file(row: dict[str, Any]) -> str | None:
    """The audio file of a row whose cut is exactly that whole (mono-read) file, else None."""
    cut = row.get("cut")
    if not cut:
        return None
    d = json.loads(str(cut))
    rec = d.get("recording") or {}
    files = [s for s in rec.get("sources", []) if s.get("type") == "file"]
    if d.get("type", "MonoCut") != "MonoCut" or len(files) != 1 or len(rec.get("sources", [])) != 1:
        return None
    if rec.get("transforms") or len(files[0].get("channels", [0])) != 1:
        return None
    start, dur = float(d.get("start") or 0.0), float(d["duration"])
    if start > 1e-3 or float(rec.get("duration") or 0.0) - dur > 1e-2:
        return None
    return str(files[0]["source"])


def cut_samples(row: dict[str, Any], where: str) -> tuple[np.ndarray, int]:
    """(float32 (S,) samples of the row's cut, sampling rate), loaded through lhotse.

    Raises:
        InputError: the row has no cut with a recording (`where` names the output and row).
    """
    # lazy: lhotse (and torch with it) takes seconds to import
    from lhotse.serialization import deserialize_item

    if not row.get("cut"):
        raise InputError(f"{where}:{row['id']}", "has no cut JSON with a recording; the export needs its audio")
    cut = deserialize_item(json.loads(str(row["cut"])))
    if not getattr(cut, "has_recording", False):
        raise InputError(f"{where}:{row['id']}", "has no recording; the export needs its audio")
    audio = np.asarray(cut.load_audio(), dtype=np.float32)  # (C, S)
    return audio[0], int(cut.sampling_rate)


def flac_bytes(wave: np.ndarray, sr: int) -> bytes:
    """`wave` float32 (S,) as 24-bit FLAC bytes."""
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


def audio_file(row: dict[str, Any], audio_dir: Path, final_dir: Path, where: str, *,
               usable: Callable[[str], bool] | None = None) -> str:
    """A file holding exactly the row's audio: the original one (when `usable` accepts its path,
    e.g. a Kaldi line can hold it), or ``audio_dir/<id>.flac`` (written; the returned path is
    under `final_dir`, where `audio_dir` will be renamed to)."""
    path = whole_file(row)
    if path is not None and (usable is None or usable(path)):
        return path
    wave, sr = cut_samples(row, where)
    audio_dir.mkdir(parents=True, exist_ok=True)
    name = file_stem_for_id(str(row["id"])) + ".flac"
    (audio_dir / name).write_bytes(flac_bytes(wave, sr))
    return str(final_dir / name)


def audio_cell(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A Hugging Face ``Audio`` cell ``{"bytes", "path"}`` with the row's encoded audio."""
    path = whole_file(row)
    if path is not None and Path(path).suffix.lower() in (".flac", ".wav", ".ogg", ".mp3", ".opus"):
        return {"bytes": Path(path).read_bytes(), "path": Path(path).name}
    wave, sr = cut_samples(row, where)
    return {"bytes": flac_bytes(wave, sr), "path": file_stem_for_id(str(row["id"])) + ".flac"}
