"""Generates a small corpus mixing good audio with every kind of bad input, and the expected
outcome of ingesting it (used by test_ingest_bad_corpus.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def _speech_like(seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x = x + 0.01 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x


def _txt(path: Path, text: str) -> None:
    path.with_suffix(".txt").write_text(text + "\n")


def make_dir_corpus(root: Path) -> dict[str, str]:
    """Writes `root/*.{wav,flac,ogg,aiff}` + `.txt` sidecars; returns stem -> expected outcome
    (``"kept"``, ``"kept:no_transcript"`` or a quarantine reason)."""
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def good(name: str, data: np.ndarray, text: str | None = "hello world", **kw: object) -> None:
        p = root / name
        sf.write(p, data, SR, **kw)  # type: ignore[arg-type]
        if text is not None:
            _txt(p, text)

    good("good_mono.wav", _speech_like(1.0, 1), "good mono", subtype="PCM_16")
    good("good_flac.flac", _speech_like(1.2, 2), "good flac")
    good("good_stereo.wav", _speech_like(0.8, 3, channels=2), "good stereo", subtype="PCM_16")
    good("good_ogg.ogg", _speech_like(1.0, 4), "good ogg", format="OGG", subtype="VORBIS")
    good("good_aiff.aiff", _speech_like(0.5, 5), "good aiff", format="AIFF", subtype="PCM_16")
    good("notext.wav", _speech_like(0.7, 6), None, subtype="PCM_16")
    expected.update(
        good_mono="kept", good_flac="kept", good_stereo="kept", good_ogg="kept", good_aiff="kept",
        notext="kept:no_transcript",
    )
    # Two files with the same stem: the first in sorted order (dup.flac) wins.
    good("dup.flac", _speech_like(0.6, 7), "dup flac")
    good("dup.wav", _speech_like(0.6, 8), "dup wav", subtype="PCM_16")
    expected["dup"] = "kept"  # dup.flac; dup.wav is the duplicate_id (checked by path)

    # Truncated: the second half of the bytes cut off.
    for name, fmt in (("trunc_wav.wav", "WAV"), ("trunc_flac.flac", "FLAC")):
        tmp = root / ("full_" + name)
        sf.write(tmp, _speech_like(1.0, 9), SR, format=fmt)
        b = tmp.read_bytes()
        tmp.unlink()
        (root / name).write_bytes(b[: len(b) // 2])
        _txt(root / name, "cut short")
    expected.update(trunc_wav="truncated", trunc_flac="truncated")

    (root / "garbage.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    _txt(root / "garbage.wav", "not audio")
    (root / "zero_bytes.wav").write_bytes(b"")
    _txt(root / "zero_bytes.wav", "nothing")
    sf.write(root / "no_frames.wav", np.zeros(0, dtype=np.float32), SR, subtype="PCM_16")
    _txt(root / "no_frames.wav", "header only")
    good("zeros.wav", np.zeros(SR, dtype=np.float32), "all zeros", subtype="PCM_16")
    good("const.wav", np.full(SR, 0.25, dtype=np.float32), "dc only", subtype="PCM_16")
    nan = _speech_like(0.5, 10)
    nan[100] = np.nan
    good("nan.wav", nan, "has nan", subtype="FLOAT")
    inf = _speech_like(0.5, 11)
    inf[200] = np.inf
    good("inf.wav", inf, "has inf", subtype="FLOAT")
    good("six_ch.wav", _speech_like(0.5, 12, channels=6), "six channels", subtype="PCM_16")
    # AIFF whose COMM chunk claims 1.5x the frames its (complete) SSND chunk holds.
    good("hdr_aiff.aiff", _speech_like(0.5, 13), "wrong header", format="AIFF", subtype="PCM_16")
    b = bytearray((root / "hdr_aiff.aiff").read_bytes())
    i = b.find(b"COMM")
    (frames,) = struct.unpack(">I", b[i + 10 : i + 14])
    b[i + 10 : i + 14] = struct.pack(">I", frames * 3 // 2)
    (root / "hdr_aiff.aiff").write_bytes(bytes(b))
    (root / "orphan.txt").write_text("a transcript without audio\n")
    expected.update(
        garbage="unreadable",
        zero_bytes="empty",
        no_frames="empty",
        zeros="silent",
        const="constant",
        nan="nan_or_inf",
        inf="nan_or_inf",
        six_ch="bad_channels",
        hdr_aiff="duration_mismatch",
        orphan="no_audio_for_transcript",
    )
    return expected


def make_jsonl(root: Path, corpus: Path) -> tuple[Path, dict[str, str]]:
    """A JSONL source over `corpus` with missing files, text without audio, duplicates, a wrong
    declared duration and a broken line; returns (path, id -> expected outcome)."""
    rel = corpus.name
    lines = [
        json.dumps({"id": "j_good", "audio": f"{rel}/good_mono.wav", "text": "good", "speaker": "s1"}),
        json.dumps({"id": "j_flac", "audio": f"{rel}/good_flac.flac", "text": "flac", "speaker": "s2",
                    "language": "en"}),
        json.dumps({"id": "j_missing", "audio": f"{rel}/not_there.wav", "text": "missing"}),
        json.dumps({"id": "j_textonly", "text": "a transcript without audio"}),
        json.dumps({"id": "j_good", "audio": f"{rel}/good_ogg.ogg", "text": "same id again"}),
        json.dumps({"id": "j_long", "audio": f"{rel}/good_mono.wav", "text": "x", "duration": 5.0}),
        "{this is not json",
        json.dumps({"id": "j_zeros", "audio": f"{rel}/zeros.wav", "text": "zeros"}),
        json.dumps({"id": "j_notext", "audio": f"{rel}/notext.wav"}),
    ]
    path = root / "list.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, {
        "j_good": "kept",
        "j_flac": "kept",
        "j_missing": "missing_file",
        "j_textonly": "no_audio_for_transcript",
        "j_long": "duration_mismatch",
        "j_zeros": "silent",
        "j_notext": "kept:no_transcript",
    }


def make_kaldi(root: Path, corpus: Path) -> tuple[Path, dict[str, str]]:
    """A Kaldi dir with relative paths, a missing file, a piped command, a transcript without
    audio, and segments (one past the end, one on an unknown recording)."""
    d = root / "kaldi"
    d.mkdir(parents=True, exist_ok=True)
    rel = f"../{corpus.name}"
    (d / "wav.scp").write_text(
        f"recA {rel}/good_mono.wav\n"
        f"recB {rel}/good_flac.flac\n"
        f"recC {rel}/missing.flac\n"
        f"recD sox {rel}/good_mono.wav -t wav - |\n"
    )
    (d / "segments").write_text(
        "uA1 recA 0.0 0.5\n"
        "uA2 recA 0.5 1.0\n"
        "uB1 recB 0.2 3.0\n"
        "uB2 recB 0.0 1.0\n"
        "uZ1 recZ 0.0 1.0\n"
    )
    (d / "text").write_text("uA1 FIRST HALF\nuA2 SECOND HALF\nuB1 TOO LONG\nuB2 FLAC\nuX1 NO AUDIO\n")
    (d / "utt2spk").write_text("uA1 spkA\nuA2 spkA\nuB1 spkB\nuB2 spkB\n")
    return d, {
        "uA1": "kept",
        "uA2": "kept",
        "uB1": "duration_mismatch",
        "uB2": "kept",
        "recC": "missing_file",
        "recD": "unsupported_source",
        "uZ1": "unknown_recording",
        "uX1": "no_audio_for_transcript",
    }
