"""One Kaldi reader (issue 14): tab-separated and mixed tab/space Kaldi files read the same as
space-separated ones in ingest and in the cascade (`compare`'s text family runs the cascade and
reads durations through the same `read_kaldi_dir`)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechtok.errors import InputError
from speechtok.manifests.ingest import ingest
from speechtok.trainers.cascade.data import read_kaldi_dir

UTTS = [("spkA-u1", "spkA", "hello there"), ("spkA-u2", "spkA", "good  morning all"), ("spkB-u1", "spkB", "bye")]


def _kaldi(root: Path, sep: str | tuple[str, ...]) -> Path:
    """A Kaldi dir whose id/rest separator is `sep` (cycled over lines when a tuple)."""
    seps = (sep,) if isinstance(sep, str) else sep
    root.mkdir(parents=True)
    (root / "audio").mkdir()
    wav, text, spk = [], [], []
    for i, (uid, s, t) in enumerate(UTTS):
        x = np.random.default_rng(i).uniform(-0.3, 0.3, 8000).astype(np.float32)
        sf.write(root / "audio" / f"{uid}.wav", x, 16000, subtype="PCM_16")
        d = seps[i % len(seps)]
        wav.append(f"{uid}{d}audio/{uid}.wav")
        text.append(f"{uid}{d}{t}")
        spk.append(f"{uid}{d}{s}")
    for name, rows in (("wav.scp", wav), ("text", text), ("utt2spk", spk)):
        (root / name).write_text("\n".join(rows) + "\n")
    return root


def _ingested(src: Path, out: Path) -> list[tuple[str, str, str | None, str | None]]:
    rep = ingest(src, out, kind="kaldi", progress=False)
    rows = []
    with gzip.open(rep.cuts_path, "rt") as fh:
        for line in fh:
            c = json.loads(line)
            sup = c["supervisions"][0]
            rel = Path(c["recording"]["sources"][0]["source"]).relative_to(src)
            rows.append((c["id"], str(rel), sup.get("text"), sup.get("speaker")))
    return rows


def _cascade(src: Path) -> list[tuple[str, str, str | None, str | None]]:
    return [(u.id, str(u.path.relative_to(src)), u.text, u.speaker) for u in read_kaldi_dir(src)]


@pytest.mark.parametrize("sep", ["\t", ("\t", " ", " \t "), "   "], ids=["tabs", "mixed", "spaces3"])
def test_tab_and_mixed_kaldi_dirs_read_like_space_separated(tmp_path: Path, sep: str | tuple[str, ...]) -> None:
    ref = _kaldi(tmp_path / "space", " ")
    other = _kaldi(tmp_path / "other", sep)
    want = [(uid, f"audio/{uid}.wav", t, s) for uid, s, t in UTTS]
    assert _ingested(ref, tmp_path / "i1") == _ingested(other, tmp_path / "i2") == want
    assert _cascade(ref) == _cascade(other) == want


def test_missing_speaker_is_refused_not_invented(tmp_path: Path) -> None:
    src = _kaldi(tmp_path / "k", "\t")
    (src / "utt2spk").write_text("spkA-u1\tspkA\n")
    with pytest.raises(InputError, match="no speaker for 2 of 3"):
        read_kaldi_dir(src)


def test_piped_entry_is_refused_with_the_fix(tmp_path: Path) -> None:
    src = _kaldi(tmp_path / "k", " ")
    with (src / "wav.scp").open("a") as fh:
        fh.write("spkC-u1\tsox x.wav -t wav - |\n")
    with pytest.raises(InputError, match="unsupported_source"):
        read_kaldi_dir(src)
