"""A Kaldi data directory: `wav.scp` (+ `text`, `utt2spk`, `segments`, `spk2gender`, `reco2dur`,
`utt2lang`).

`wav.scp` is read line by line (streamed); the keyed side files are read into dicts. Paths in
`wav.scp` may be relative (to the data dir, then the working directory; see
`resolve_audio_path`). Piped commands (``sox in.wav -t wav - |``) and archive offsets
(``foo.ark:123``) are not run: they are reported as ``unsupported_source`` with the fix.
Without `segments`, each `wav.scp` entry is one utterance; with it, one cut per segment.

A line that cannot be used is quarantined as ``bad_entry`` with what it takes down: a `wav.scp`
line (its recording), a `segments` line (its utterance), a `text`/`utt2spk`/`utt2lang` line that
is not UTF-8 (its utterance), a `reco2dur` line that is not UTF-8 or whose value is not a finite
number (its recording, whose duration could not be checked). A `spk2gender` line that is not
UTF-8 stops the ingest (`InputError` naming file and line): it belongs to a speaker, not an item.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from speechtok.errors import InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, remote_source, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.text_lines import decode_line, iter_lines, iter_raw_lines


def _keyed_lines(path: Path, bad: dict[str, Problem] | None = None) -> Iterator[tuple[int, str, str]]:
    """``(line number, key, rest of line)`` of a `key rest-of-line` file (text, utt2spk, ...);
    nothing for an absent file.

    `bad`: where a line that is not UTF-8 goes, as a ``bad_entry`` `Problem` keyed by the line's
    key (the first word, when that much decodes; else ``"<file>:<line>"``, a key no id has), so
    that only its item is quarantined. Without `bad` such a line is an `InputError`.

    Raises:
        InputError: a line is not UTF-8 and `bad` is None (naming the file, line and byte).
    """
    if not path.exists():
        return
    for lineno, raw in iter_raw_lines(path):
        line, err = decode_line(raw)
        if line is None:
            if bad is None:
                raise InputError(f"{path}:{lineno}", err)
            key, _ = decode_line(raw.split(maxsplit=1)[0])
            origin = f"{path}:{lineno}"
            detail = f"{path.name}: {err}"
            earlier = bad.get(key or origin)  # the same item's line in another file: one problem, both named
            bad[key or origin] = Problem(reason="bad_entry", id=key, origin=earlier.origin if earlier else origin,
                                         detail=f"{earlier.detail}; {detail} ({origin})" if earlier else detail)
            continue
        parts = line.strip().split(maxsplit=1)
        if parts:
            yield lineno, parts[0], parts[1].strip() if len(parts) > 1 else ""


def _read_keyed(path: Path, bad: dict[str, Problem] | None = None) -> dict[str, str]:
    """`key rest-of-line` files -> dict (the last line of a key wins); see `_keyed_lines`."""
    return {key: value for _, key, value in _keyed_lines(path, bad)}


def _read_reco2dur(path: Path, bad: dict[str, Problem]) -> dict[str, float]:
    """``reco seconds`` lines -> {reco: seconds}; a line that is not UTF-8, or whose value is not
    a finite number, goes to `bad` (keyed by its recording) instead."""
    out: dict[str, float] = {}
    for lineno, reco, value in _keyed_lines(path, bad):
        seconds = _float_or_none(value)
        if seconds is None:
            bad[reco] = Problem(reason="bad_entry", id=reco, origin=f"{path}:{lineno}",
                                detail=f"reco2dur: expected `reco seconds` with a finite number, found {value!r}; "
                                "the recording's duration cannot be checked (fix or delete the line)")
        else:
            out[reco] = seconds
    return out


def _float_or_none(v: str | None) -> float | None:
    """`v` as a finite float; None when absent, not a number, NaN or infinite."""
    try:
        f = float(v) if v is not None else None
    except ValueError:
        return None
    return f if f is not None and math.isfinite(f) else None


def _unsupported(raw: str) -> str | None:
    """Why the wav.scp entry `raw` is not read (a piped command, an archive offset), or None."""
    if raw.endswith("|"):
        return (f"piped command {raw!r} is not run; write its output to an audio file and list "
                "that file in wav.scp")
    remote = remote_source(raw)
    if remote is not None:
        return remote
    if ".ark:" in raw or (raw.count(":") == 1 and raw.rsplit(":", 1)[1].isdigit()):
        return f"archive offset {raw!r} is not supported; extract the audio to files"
    return None


def iter_kaldi(data_dir: Path, *, language: str | None = None, rebase: bool = True) -> SourceStream:
    """Yields one `SourceItem` per `wav.scp` entry, then leftovers as problems."""
    data_dir = Path(data_dir)
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.exists():
        raise InputError(str(data_dir), "is not a Kaldi data dir: it has no wav.scp")
    bad_utt: dict[str, Problem] = {}  # utterance -> its text/utt2spk/utt2lang line that is not UTF-8
    text = _read_keyed(data_dir / "text", bad_utt)
    utt2spk = _read_keyed(data_dir / "utt2spk", bad_utt)
    utt2lang = _read_keyed(data_dir / "utt2lang", bad_utt)
    spk2gender = _read_keyed(data_dir / "spk2gender")  # keyed by speaker: a bad line stays an InputError
    bad_reco: dict[str, Problem] = {}  # recording -> its unusable reco2dur line
    reco2dur = _read_reco2dur(data_dir / "reco2dur", bad_reco)
    segments: dict[str, list[tuple[str, float, float]]] | None = None
    seg_file = data_dir / "segments"
    bad_segments: list[Problem] = []
    if seg_file.exists():
        segments = defaultdict(list)
        for lineno, line, err in iter_lines(seg_file):
            if line is None:
                bad_segments.append(Problem(reason="bad_entry", origin=f"{seg_file}:{lineno}", detail=err))
                continue
            parts = line.split()
            if not parts:
                continue
            start = _float_or_none(parts[2]) if len(parts) == 4 else None
            end = _float_or_none(parts[3]) if len(parts) == 4 else None
            if start is None or end is None:
                text.pop(parts[0], None)  # reported here, not again as a transcript without audio
                bad_segments.append(
                    Problem(
                        reason="bad_entry",
                        id=parts[0],
                        origin=f"{seg_file}:{lineno}",
                        detail=f"expected `utt reco start end` with finite numeric times, found {line.strip()!r}",
                    )
                )
                continue
            segments[parts[1]].append((parts[0], start, end))
    yield from bad_segments

    def spec(utt: str, start: float = 0.0, duration: float | None = None) -> SegmentSpec:
        spk = utt2spk.get(utt)
        return SegmentSpec(
            id=utt,
            start=start,
            duration=duration,
            text=text.pop(utt, None),
            speaker=spk,
            language=utt2lang.get(utt, language),
            gender=spk2gender.get(spk) if spk is not None else None,
        )

    def drop(reco: str) -> None:
        """Forgets the transcripts of a recording reported as unsupported."""
        text.pop(reco, None)
        for utt, _, _ in (segments or {}).pop(reco, []):
            text.pop(utt, None)

    for lineno, line, err in iter_lines(wav_scp):
        if line is None:
            yield Problem(reason="bad_entry", origin=f"{wav_scp}:{lineno}", detail=err)
            continue
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        origin = f"{wav_scp}:{lineno}"
        reco = parts[0]
        if len(parts) < 2:
            yield Problem(reason="bad_entry", id=reco, origin=origin, detail="no path after the id")
            continue
        raw = parts[1].strip()
        why = _unsupported(raw)
        if why is not None:
            yield Problem(reason="unsupported_source", id=reco, origin=origin, detail=why)
            drop(reco)
            continue
        if reco in bad_reco:
            yield bad_reco.pop(reco)
            drop(reco)
            continue
        path = resolve_audio_path(raw, data_dir, rebase=rebase)
        utts: list[tuple[str, float, float | None]] = [(reco, 0.0, None)]
        if segments is not None and reco in segments:
            utts = [(u, s, e - s) for u, s, e in segments.pop(reco)]
        specs = []
        for utt, start, duration in utts:
            if utt in bad_utt:  # only this utterance is lost
                text.pop(utt, None)
                yield bad_utt.pop(utt)
            else:
                specs.append(spec(utt, start, duration))
        if not specs:
            continue
        yield SourceItem(
            recording_id=reco,
            path=path,
            origin=origin,
            segments=tuple(specs),
            declared_duration=reco2dur.get(reco),
        )
    for reco, segs in (segments or {}).items():
        for utt, _, _ in segs:
            text.pop(utt, None)
            yield Problem(
                reason="unknown_recording",
                id=utt,
                origin=str(seg_file),
                detail=f"segment refers to recording {reco!r}, which wav.scp does not list",
            )
    for utt in text:
        yield Problem(
            reason="no_audio_for_transcript",
            id=utt,
            origin=str(data_dir / "text"),
            detail="utterance has a transcript but no wav.scp (or segments) entry",
        )
    yield from bad_utt.values()  # lines of utterances no wav.scp/segments entry has: still reported
    yield from bad_reco.values()
