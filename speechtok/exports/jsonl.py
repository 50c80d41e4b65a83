"""The row loop of the JSONL manifest exports (``--to nemo``, ``--to slam``): one cut of the shards
at a time with its single audio file and its token groups, one JSON object per line out.

Streamed row by row (memory flat in corpus size).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset

#: Field-group kinds a JSONL manifest carries as extra columns (features are too large for JSON).
TOKEN_KINDS: tuple[str, ...] = ("units", "codes")


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


@dataclass(frozen=True)
class CutRow:
    """One cut as a manifest line needs it.

    Attributes:
        key: the cut id. audio: its recording's single audio file. start, duration: the cut in
        that file, in seconds. segment: True when the cut is not the whole file (starts after
        1 ms or ends 10 ms before the end). row: the shard row (``text`` and the other columns asked
        for). tokens: each token group as JSON lists (units: ints; codes: ``[q0, q1, ...]`` frames).
    """

    key: str
    audio: str
    start: float
    duration: float
    segment: bool
    row: dict[str, Any]
    tokens: dict[str, Any]


def cut_rows(out_dir: Path, groups: Sequence[str], columns: Sequence[str], needs: str) -> Iterator[CutRow]:
    """The cuts of `out_dir` in shard order with the ``cuts`` `columns` (plus ``cut``, ``text``,
    ``start``, ``duration``) and the token groups among `groups`.

    Raises:
        InputError: a cut without a single audio file (`needs` names the format that needs one).
    """
    token_groups = [g for g in groups if g.split(".", 1)[0] in TOKEN_KINDS]
    cols = dict.fromkeys(["cut", "text", *columns, "start", "duration", *token_groups])
    for row in ShardDataset(out_dir, ("cuts", *token_groups), list(cols)):
        key = str(row["id"])
        rec = recording_file(row)
        if rec is None:
            raise InputError(f"{out_dir}:{key}", f"has no single audio file in its cut; {needs} needs one")
        path, rec_dur = rec
        start, dur = float(row.get("start") or 0.0), float(row["duration"])
        yield CutRow(key=key, audio=path, start=start, duration=dur,
                     segment=start > 1e-3 or rec_dur - dur > 1e-2, row=row,
                     tokens={g: row[g].tolist() for g in token_groups})


def write_jsonl(path: Path, rows: Iterator[CutRow], line: Callable[[CutRow], dict[str, object]]) -> int:
    """Writes ``line(row)`` for every row to `path`, one JSON object per line; returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(line(r), ensure_ascii=False) + "\n")
            n += 1
    return n
