"""``--to espnet``: the Kaldi-style files ESPnet-SpeechLM consumes, and its data description file.

``DEST`` holds, one line per cut, all files in the same id order (``<id> <content>``):

- ``wav.scp``: ``<id> <audio file>``: the original file for a whole-file cut, else the cut's
  samples written once to ``DEST/audio/<id>.flac`` (segments, resampled or in-place sources);
- ``text``: ``<id> <transcript>`` (cuts without a transcript are refused: `InputError`);
- ``utt2spk``: ``<id> <speaker>`` (the id itself when the cut has no speaker, Kaldi's habit);
- one file per token group, named like the group (``units.km50``, ``codes.q4``):
  ``<id> <t0> <t1> ...``; codes frame-major (``t0q0 t0q1 .. t1q0 ..``), as in ``--to memmap``;
- ``data.json``: the data description of ESPnet-SpeechLM's ``prepare_dataset_json.py``:
  ``{"task", "vocabularies": [], "data_files": ["<path>,<modality>,<type>", ...],
  "num_examples", "examples": [ids]}`` with ``wav.scp,speech,wav_scp``, ``text,text_bpe,text``,
  units ``<group>,ssl,text`` and codes ``<group>,codec,text``; plus ``"speechtok"``: each token
  group's vocabulary size, codebooks, frame rate and provenance.

Streamed row by row (memory flat in corpus size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import numpy as np

from speechtok.errors import InputError
from speechtok.exports.audio import audio_file
from speechtok.shards.reader import ShardDataset

_MODALITY = {"units": "ssl", "codes": "codec"}


def export_espnet(out_dir: Path, dest: Path, groups: Sequence[str], *, task: str = "asr",
                  final: Path | None = None) -> int:
    """Writes the files of the module docstring into `dest`; returns rows written.

    `final`: the directory `dest` is renamed to (paths in ``wav.scp``/``data.json`` point there).
    """
    final_dir = Path(final or dest).absolute()
    token_groups = [g for g in groups if g.split(".", 1)[0] in _MODALITY]
    ds = ShardDataset(out_dir, ("cuts", *token_groups),
                      ["cut", "text", "speaker", "start", "duration", *token_groups])
    ids: list[str] = []
    names = ["wav.scp", "text", "utt2spk", *token_groups]
    with ExitStack() as stack:
        fh: dict[str, IO[str]] = {
            n: stack.enter_context(open(dest / n, "w", encoding="utf-8")) for n in names}
        for row in ds:
            key = str(row["id"])
            if any(c.isspace() for c in key):
                raise InputError(f"{out_dir}:{key}", "has whitespace in its id; Kaldi-style files cannot hold it")
            text = row.get("text")
            if text is None:
                raise InputError(f"{out_dir}:{key}", "has no transcript; ESPnet's `text` needs one")
            path = audio_file(row, dest / "audio", final_dir / "audio", str(out_dir))
            fh["wav.scp"].write(f"{key} {path}\n")
            fh["text"].write(f"{key} {' '.join(str(text).split())}\n")
            fh["utt2spk"].write(f"{key} {row.get('speaker') or key}\n")
            for g in token_groups:
                tokens = np.ascontiguousarray(row[g]).reshape(-1)
                fh[g].write(key + " " + " ".join(map(str, tokens.tolist())) + "\n")
            ids.append(key)
    files = [f"{final_dir / 'wav.scp'},speech,wav_scp", f"{final_dir / 'text'},text_bpe,text"]
    files += [f"{final_dir / g},{_MODALITY[g.split('.', 1)[0]]},text" for g in token_groups]
    meta = {g: json.loads(ds.meta(g).to_json()) for g in token_groups}
    desc = {"task": task, "vocabularies": [], "data_files": files, "num_examples": len(ids),
            "examples": ids,
            "speechtok": {g: {"vocab_size": m["vocab_size"], "num_codebooks": m["num_codebooks"],
                              "frame_rate": m["frame_rate"],
                              "layout": "frame-major" if g.startswith("codes") else "flat",
                              "provenance": m} for g, m in meta.items()}}
    (dest / "data.json").write_text(json.dumps(desc, indent=2, ensure_ascii=False) + "\n")
    return len(ids)
