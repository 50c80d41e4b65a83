"""Source options: TSV transcripts, label regex, speaker from directories, kind detection, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.errors import ConfigError, InputError
from speechtok.manifests.ingest import ingest
from speechtok.manifests.items import resolve_audio_path
from speechtok.manifests.quarantine import read_quarantine
from speechtok.manifests.sources import detect_kind


def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(-0.3, 0.3, 8000).astype(np.float32)
    sf.write(path, x, 16000, subtype="PCM_16")


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    _wav(root / "alice" / "sess1" / "a_1.wav", 1)
    _wav(root / "alice" / "sess1" / "a_2.wav", 2)
    _wav(root / "bob" / "b_1.wav", 3)
    _wav(root / "top.wav", 4)
    return root


def test_tsv_regex_and_speaker_dirs(tree: Path, tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\ttext\tlanguage\nalice/sess1/a_1\thello there\ten\nb_1.wav\tgood bye\tde\nghost\tno audio\ten\n")
    rep = ingest(tree, tmp_path / "o1", text_tsv=tsv, speaker_from="top_dir", progress=False)
    cuts = {c.id: c for c in CutSet.from_file(rep.cuts_path)}
    assert list(cuts) == ["top", "alice/sess1/a_1", "alice/sess1/a_2", "bob/b_1"]  # sorted walk
    assert cuts["alice/sess1/a_1"].supervisions[0].text == "hello there"
    assert cuts["alice/sess1/a_1"].supervisions[0].speaker == "alice"
    assert cuts["bob/b_1"].supervisions[0].language == "de"
    assert cuts["top"].supervisions[0].speaker is None
    problems = {p["id"]: p["reason"] for p in read_quarantine(rep.quarantine_path)}
    assert problems == {"ghost": "no_audio_for_transcript", "top": "no_transcript", "alice/sess1/a_2": "no_transcript"}
    rep = ingest(tree, tmp_path / "o2", speaker_from="parent_dir", label_regex=r"(?P<speaker>[a-z])_(?P<text>\d)",
                 progress=False)
    cuts = {c.id: c for c in CutSet.from_file(rep.cuts_path)}
    assert (cuts["alice/sess1/a_2"].supervisions[0].speaker, cuts["alice/sess1/a_2"].supervisions[0].text) == ("a", "2")
    assert cuts["top"].supervisions[0].text is None  # "top" does not match the regex


def test_kind_detection_and_errors(tree: Path, tmp_path: Path) -> None:
    assert detect_kind(tree) == "dir"
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "wav.scp").write_text("")
    assert detect_kind(tmp_path / "k") == "kaldi"
    j = tmp_path / "u.jsonl"
    j.write_text(json.dumps({"audio": "corpus/top.wav", "text": "x"}) + "\n")
    assert detect_kind(j) == "jsonl"
    with pytest.raises(InputError, match="does not exist"):
        ingest(tmp_path / "nope", tmp_path / "o")
    with pytest.raises(ConfigError, match="label_regex"):
        ingest(tree, tmp_path / "o", label_regex="(?P<foo>x)")
    with pytest.raises(ConfigError, match="IngestOptions"):
        ingest(tree, tmp_path / "o", not_an_option=1)
    with pytest.raises(ConfigError, match="kind"):
        ingest(tree, tmp_path / "o", kind="wav")
    with pytest.raises(ConfigError, match="sample_rate"):
        ingest(tree, tmp_path / "o", sample_rate=12)


def test_resolve_audio_path_rebases_lhotse_style_paths(tmp_path: Path) -> None:
    f = tmp_path / "fixtures" / "libri" / "x.wav"
    _wav(f, 0)
    got = resolve_audio_path("test/fixtures/libri/x.wav", tmp_path / "fixtures" / "libri")
    assert got == f
    assert resolve_audio_path("../libri/x.wav", tmp_path / "fixtures" / "libri") == f
    missing = resolve_audio_path("test/nothing.wav", tmp_path, rebase=True)
    assert missing == tmp_path / "test" / "nothing.wav"


def test_parallel_executor_gives_identical_output(tree: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    a = ingest(tree, tmp_path / "a", progress=False)
    with ThreadPoolExecutor(2) as ex:
        b = ingest(tree, tmp_path / "b", executor=ex, options=None, window=2, progress=False)
    assert [c.to_dict() for c in CutSet.from_file(a.cuts_path)] == [c.to_dict() for c in CutSet.from_file(b.cuts_path)]
    assert a.to_dict()["reasons"] == b.to_dict()["reasons"]


def test_recipe_style_plain_options(tree: Path, tmp_path: Path) -> None:
    """Options as a YAML recipe gives them: str paths and a dict for `check`."""
    tsv = tmp_path / "t.tsv"
    tsv.write_text("bob/b_1\thi\n")
    rep = ingest(tree, tmp_path / "o", text_tsv=str(tsv), check={"max_channels": 1}, speaker_from="top_dir",
                 progress=False)
    assert rep.num_cuts == 4 and rep.flags == {"no_transcript": 3}
    with pytest.raises(ConfigError, match="check"):
        ingest(tree, tmp_path / "o2", check={"nope": 1})


def test_cli_splits(tree: Path, tmp_path: Path) -> None:
    from speechtok.cli import main

    out = tmp_path / "o"
    args = ["ingest", str(tree), "-o", str(out), "--speaker-from", "top-dir", "--no-progress"]
    assert main([*args, "--splits", "0.5,0.5"]) == 1  # rejected before any work
    assert not (out / "cuts.jsonl.gz").exists()
    assert main([*args, "--splits", "0.5,0.25,0.25"]) == 0
    n = {s: len(CutSet.from_file(out / f"cuts.{s}.jsonl.gz")) for s in ("train", "dev", "test")}
    assert sum(n.values()) == 4


def test_unexpected_item_errors_are_quarantined(tree: Path, tmp_path: Path) -> None:
    """A non-UTF-8 sidecar and a malformed lhotse supervision quarantine one item each."""
    (tree / "bob" / "b_1.txt").write_bytes(b"caf\xe9\n")
    rep = ingest(tree, tmp_path / "o", progress=False)
    problems = {p["id"]: p for p in read_quarantine(rep.quarantine_path)}
    assert problems["bob/b_1"]["reason"] == "bad_entry" and "UTF-8" in str(problems["bob/b_1"]["detail"])
    assert rep.num_cuts == 3
    rec = {"id": "r", "sources": [{"type": "file", "channels": [0], "source": str(tree / "top.wav")}],
           "sampling_rate": 16000, "num_samples": 8000, "duration": 0.5}
    good = {"id": "c1", "start": 0, "duration": 0.5, "channel": 0, "recording": rec, "type": "MonoCut",
            "supervisions": [{"id": "s1", "recording_id": "r", "start": 0, "duration": 0.5, "text": "hi"}]}
    bad = dict(good, id="c2", supervisions=[{"id": "s2", "recording_id": "r", "start": 0, "duration": 0.5, "bogus": 1}])
    (tmp_path / "cuts.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    rep = ingest(tmp_path / "cuts.jsonl", tmp_path / "o2", progress=False)
    assert rep.kind == "lhotse" and rep.num_cuts == 1
    (p,) = read_quarantine(rep.quarantine_path)
    assert p["reason"] == "bad_entry" and "bogus" in str(p["detail"])


def test_kaldi_pipes_and_archive_offsets_are_unsupported_sources(tmp_path: Path) -> None:
    """wav.scp entries that are not plain files are quarantined naming what to do instead."""
    from speechtok.manifests.quarantine import Problem
    from speechtok.manifests.sources.kaldi import iter_kaldi

    d = tmp_path / "kaldi"
    d.mkdir()
    (d / "wav.scp").write_text("p sox a.wav -t wav - |\nq feats.ark:123\nr audio.wav:5\ns a.wav\n")
    out = list(iter_kaldi(d))
    problems = {x.id: x for x in out if isinstance(x, Problem)}
    assert {i: p.reason for i, p in problems.items()} == {"p": "unsupported_source", "q": "unsupported_source",
                                                          "r": "unsupported_source"}
    assert "piped command" in problems["p"].detail and "archive offset" in problems["q"].detail
    assert [x.recording_id for x in out if not isinstance(x, Problem)] == ["s"]
