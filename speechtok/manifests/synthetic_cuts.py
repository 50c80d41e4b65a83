"""A synthetic lhotse cuts manifest of any size, without audio: for planning at scale.

`write_synthetic_cuts(path, hours, cut_s)` writes ``hours * 3600 / cut_s`` MonoCuts of `cut_s`
seconds each (one recording, one supervision with the text "synthetic", a 16 kHz FLAC path
under ``/corpus`` that does not exist) as gzipped JSONL, in blocks of 10,000 lines, so that a
10,000-hour manifest (3.6 million 10 s cuts, ~60 MB) takes seconds and little memory. Used by
``speechtok run --plan`` tests and by ``bench/bench_runner.py`` (``runner.plan_10kh_*``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from speechtok import atomic

_BLOCK = 10_000


def _line(i: int, cut_s: float) -> str:
    rid = f"rec{i:08d}"
    return (f'{{"id": "{rid}-0", "start": 0.0, "duration": {cut_s}, "channel": 0, '
            f'"supervisions": [{{"id": "{rid}-0", "recording_id": "{rid}", "start": 0.0, '
            f'"duration": {cut_s}, "channel": 0, "text": "synthetic"}}], "recording": '
            f'{{"id": "{rid}", "sources": [{{"type": "file", "channels": [0], "source": '
            f'"/corpus/{rid}.flac"}}], "sampling_rate": 16000, "num_samples": '
            f'{int(cut_s * 16000)}, "duration": {cut_s}}}, "type": "MonoCut"}}\n')


def write_synthetic_cuts(path: str | Path, hours: float, cut_s: float = 10.0) -> int:
    """Writes the manifest (see module docstring) to `path` (``.jsonl.gz``, atomically, the
    same bytes every time); returns the number of cuts."""
    n = int(hours * 3600 / cut_s)
    with atomic.atomic_open(Path(path), "wb") as raw, \
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        for lo in range(0, n, _BLOCK):
            gz.write("".join(_line(i, cut_s) for i in range(lo, min(n, lo + _BLOCK))).encode())
    return n
