"""SLAM-LLM export: ``DEST/{split}.jsonl``, one ``{"key", "source", "target"}`` object per cut.

``key`` is the cut id, ``source`` the audio file, ``target`` the transcript. A cut that is a
segment of its recording (start > 0 or shorter than the file) is cut to its own file,
``DEST/audio/{key}.wav`` (16-bit PCM at the recording's rate), so every ``source`` is a whole
file as SLAM-LLM's speech datasets expect; whole-file cuts point at the original file. Token
groups asked for with ``--group`` add one column each under the group's name: units as a list
of ints, codes as a list of ``[q0, q1, ...]`` frames. Cuts without audio or text are refused
(`InputError` naming the cut): SLAM needs both. Streamed row by row (memory flat in corpus size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset


def recording_file(row: dict[str, object]) -> tuple[str, float] | None:
    """(audio file, recording duration in s) of a row's cut JSON, or None."""
    cut = row.get("cut")
    if not cut:
        return None
    rec = json.loads(str(cut)).get("recording") or {}
    files = [s for s in rec.get("sources", []) if s.get("type") == "file"]
    if len(files) != 1:
        return None
    return str(files[0]["source"]), float(rec.get("duration") or 0.0)


def export_slam(out_dir: Path, dest: Path, groups: Sequence[str], split: str, *, final: Path | None = None) -> int:
    """Writes ``{split}.jsonl`` (+ ``audio/`` for segments) into `dest`; returns rows written.

    `final`: the directory `dest` is renamed to at the end (segment paths point there).
    """
    final_dir = Path(final or dest).absolute()
    token_groups = [g for g in groups if g.split(".", 1)[0] in ("units", "codes")]
    ds = ShardDataset(out_dir, ("cuts", *token_groups),
                      ["cut", "text", "start", "duration", "sampling_rate", *token_groups])
    n = 0
    with open(dest / f"{split}.jsonl", "w", encoding="utf-8") as fh:
        for row in ds:
            key = str(row["id"])
            rec = recording_file(row)
            if rec is None:
                raise InputError(f"{out_dir}:{key}", "has no single audio file in its cut; SLAM-LLM needs one")
            if row.get("text") is None:
                raise InputError(f"{out_dir}:{key}", "has no transcript; SLAM-LLM needs a target")
            path, rec_dur = rec
            start, dur = float(row.get("start") or 0.0), float(row["duration"])
            source = path
            if start > 1e-3 or rec_dur - dur > 1e-2:  # a segment: cut it to its own file
                info = sf.info(path)
                a, b = round(start * info.samplerate), round((start + dur) * info.samplerate)
                wave, sr = sf.read(path, start=a, stop=b, dtype="float32", always_2d=False)
                (dest / "audio").mkdir(exist_ok=True)
                name = key.replace("/", "_") + ".wav"
                sf.write(dest / "audio" / name, wave, sr, subtype="PCM_16")
                source = str(final_dir / "audio" / name)
            rec_out: dict[str, object] = {"key": key, "source": source, "target": str(row["text"])}
            for g in token_groups:
                rec_out[g] = row[g].tolist()
            fh.write(json.dumps(rec_out, ensure_ascii=False) + "\n")
            n += 1
    return n
