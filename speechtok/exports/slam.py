"""SLAM-LLM export: ``DEST/{split}.jsonl``, one ``{"key", "source", "target"}`` object per cut.

``key`` is the cut id, ``source`` the audio file, ``target`` the transcript. A cut that is a
segment of its recording (start > 0 or shorter than the file) is cut to its own file,
``DEST/audio/{key}.wav`` (16-bit PCM at the recording's rate), so every ``source`` is a whole
file as SLAM-LLM's speech datasets expect; whole-file cuts point at the original file. Token
groups asked for with ``--group`` add one column each under the group's name: units as a list
of ints, codes as a list of ``[q0, q1, ...]`` frames. Cuts without audio or text are refused
(`InputError` naming the cut): SLAM needs both. Streamed row by row (`speechtok.exports.jsonl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

from speechtok.errors import InputError
from speechtok.exports.jsonl import CutRow, cut_rows, write_jsonl
from speechtok.paths import file_stem_for_id


def export_slam(out_dir: Path, dest: Path, groups: Sequence[str], split: str, *, final: Path | None = None) -> int:
    """Writes ``{split}.jsonl`` (+ ``audio/`` for segments) into `dest`; returns rows written.

    `final`: the directory `dest` is renamed to at the end (segment paths point there).
    """
    final_dir = Path(final or dest).absolute()

    def line(c: CutRow) -> dict[str, object]:
        if c.row.get("text") is None:
            raise InputError(f"{out_dir}:{c.key}", "has no transcript; SLAM-LLM needs a target")
        source = c.audio
        if c.segment:  # cut it to its own file
            info = sf.info(c.audio)
            a, b = round(c.start * info.samplerate), round((c.start + c.duration) * info.samplerate)
            wave, sr = sf.read(c.audio, start=a, stop=b, dtype="float32", always_2d=False)
            (dest / "audio").mkdir(exist_ok=True)
            name = file_stem_for_id(c.key) + ".wav"
            sf.write(dest / "audio" / name, wave, sr, subtype="PCM_16")
            source = str(final_dir / "audio" / name)
        return {"key": c.key, "source": source, "target": str(c.row["text"]), **c.tokens}

    return write_jsonl(dest / f"{split}.jsonl", cut_rows(out_dir, groups, ["sampling_rate"], "SLAM-LLM"), line)
