"""The embedded espeak-ng demo corpus: deterministic, labelled, and ingestible."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.errors import ConfigError
from speechtok.manifests.demo_corpus import DEFAULT_VOICES, SMALL_N, build_demo_corpus
from speechtok.manifests.demo_text import make_sentences
from speechtok.manifests.ingest import ingest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make setup)")


def test_sentences_are_deterministic_distinct_and_varied() -> None:
    a = make_sentences(300)
    assert a == make_sentences(300) and len(set(a)) == 300
    assert make_sentences(20) == a[:20]
    assert make_sentences(20, seed=1) != a[:20]
    assert len({len(s.split()) for s in a}) >= 4
    assert all(s == s.lower() and s.replace(" ", "").isalpha() for s in a)


def test_demo_corpus_build_and_ingest(tmp_path: Path) -> None:
    root = build_demo_corpus(tmp_path / "a", n=SMALL_N)
    wavs = sorted(root.rglob("*.wav"))
    assert len(wavs) == SMALL_N and len(list(root.rglob("*.txt"))) == SMALL_N
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # Byte-identical in another directory; a rerun with the same parameters is a no-op.
    other = build_demo_corpus(tmp_path / "b", n=SMALL_N)
    for w in wavs:
        assert w.read_bytes() == (other / w.relative_to(root)).read_bytes()
    mtime = wavs[0].stat().st_mtime_ns
    build_demo_corpus(root, n=SMALL_N)
    assert wavs[0].stat().st_mtime_ns == mtime
    # Ingest as a directory (speaker = top directory = voice) and as its JSONL manifest.
    rep = ingest(root, tmp_path / "out", speaker_from="top_dir", progress=False)
    assert rep.num_cuts == SMALL_N and rep.num_quarantined == 0 and rep.num_flagged == 0
    assert rep.num_speakers == len(DEFAULT_VOICES)
    manifest = [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]
    rep2 = ingest(root / "manifest.jsonl", tmp_path / "out2", progress=False)
    assert rep2.kind == "jsonl" and rep2.num_cuts == SMALL_N
    by_id = {m["id"]: m for m in manifest}
    for c in CutSet.from_file(rep2.cuts_path):
        sup = c.supervisions[0]
        assert sup.text == by_id[c.id]["text"] and sup.speaker == by_id[c.id]["speaker"]
        assert sup.language == "en"
        assert 0.5 < c.duration < 8.0
    for c in CutSet.from_file(rep.cuts_path):
        assert c.supervisions[0].speaker == c.id.rsplit("/", 1)[0]


def test_demo_corpus_rejects_bad_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`n`"):
        build_demo_corpus(tmp_path, n=0)
    with pytest.raises(ConfigError, match="speeds"):
        build_demo_corpus(tmp_path, n=2, speeds=(10,))
