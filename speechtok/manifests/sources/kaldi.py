"""A Kaldi data directory: `wav.scp` (+ `text`, `utt2spk`, `segments`, `spk2gender`, `reco2dur`,
`utt2lang`).

`wav.scp` is read line by line (streamed); the keyed side files are read into dicts. Paths in
`wav.scp` may be relative (to the data dir, then the working directory; see
`resolve_audio_path`). Piped commands (``sox in.wav -t wav - |``) and archive offsets
(``foo.ark:123``) are not run: they are reported as ``unsupported_source`` with the fix.
Without `segments`, each `wav.scp` entry is one utterance; with it, one cut per segment.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from speechtok.errors import InputError
from speechtok.manifests.items import SegmentSpec, SourceItem, SourceStream, remote_source, resolve_audio_path
from speechtok.manifests.quarantine import Problem
from speechtok.manifests.text_lines import iter_lines


def _read_keyed(path: Path) -> dict[str, str]:
    """`key rest-of-line` files (text, utt2spk, ...) -> dict; absent file -> {}.

    Raises:
        InputError: a line is not UTF-8 (naming the file, line and byte).
    """
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for lineno, line, err in iter_lines(path):
        if line is None:
            raise InputError(f"{path}:{lineno}", err)
        parts = line.strip().split(maxsplit=1)
        if parts:
            out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
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
    text = _read_keyed(data_dir / "text")
    utt2spk = _read_keyed(data_dir / "utt2spk")
    spk2gender = _read_keyed(data_dir / "spk2gender")
    utt2lang = _read_keyed(data_dir / "utt2lang")
    reco2dur = _read_keyed(data_dir / "reco2dur")
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
        path = resolve_audio_path(raw, data_dir, rebase=rebase)
        if segments is None:
            specs: tuple[SegmentSpec, ...] = (spec(reco),)
        else:
            segs = segments.pop(reco, [])
            specs = tuple(spec(u, s, e - s) for u, s, e in segs)
            if not specs:
                specs = (spec(reco),)
        yield SourceItem(
            recording_id=reco,
            path=path,
            origin=origin,
            segments=specs,
            declared_duration=_float_or_none(reco2dur.get(reco)),
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
