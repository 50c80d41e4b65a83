"""A generated corpus mixing good files with every kind of bad input: every good file is kept,
every bad one quarantined with its own reason, nothing crashes; --strict names the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_corpus_maker import make_dir_corpus, make_jsonl, make_kaldi
from lhotse import CutSet

from speechtok.cli import main
from speechtok.errors import InputError
from speechtok.manifests.ingest import ingest
from speechtok.manifests.quarantine import read_quarantine


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("bad")
    expected = make_dir_corpus(root / "corpus")
    return root, expected


def _outcomes(out: Path) -> tuple[dict[str, CutSet], dict[str, list[dict]]]:
    cuts = {c.id: c for c in CutSet.from_file(out / "cuts.jsonl.gz")}
    problems: dict[str, list[dict]] = {}
    for rec in read_quarantine(out / "quarantine.jsonl"):
        problems.setdefault(str(rec["id"]), []).append(rec)
    return cuts, problems


def test_dir_corpus_every_item_gets_its_outcome(bad_root: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, expected = bad_root
    report = ingest(root / "corpus", tmp_path, progress=False)
    cuts, problems = _outcomes(tmp_path)
    for stem, outcome in expected.items():
        if outcome == "kept":
            assert stem in cuts, f"{stem} should be kept; problems: {problems.get(stem)}"
            assert all(p["reason"] == "duplicate_id" for p in problems.get(stem, []))
            assert cuts[stem].supervisions[0].text
        elif outcome == "kept:no_transcript":
            assert stem in cuts
            assert [p["reason"] for p in problems[stem]] == ["no_transcript"]
            assert problems[stem][0]["kept"] is True
        else:
            assert stem not in cuts, f"{stem} should be quarantined as {outcome}"
            assert [p["reason"] for p in problems[stem]] == [outcome], stem
            assert problems[stem][0]["kept"] is False
    # dup.flac (first in sorted order) is kept, dup.wav is the duplicate.
    assert cuts["dup"].recording.sources[0].source.endswith("dup.flac")
    assert [(p["reason"], Path(str(p["path"])).name) for p in problems["dup"]] == [("duplicate_id", "dup.wav")]
    # The stereo file keeps channel 0 of a 2-channel recording.
    assert cuts["good_stereo"].channel == 0 and cuts["good_stereo"].num_channels == 1
    assert cuts["good_stereo"].recording.num_channels == 2
    # Every kind of problem is counted in the report, and every reason is distinct.
    bad = [o for o in expected.values() if not o.startswith("kept")]
    assert report.num_quarantined == len(bad) + 1  # + dup.wav
    assert report.num_cuts == sum(o.startswith("kept") for o in expected.values())
    assert report.flags == {"no_transcript": 1}
    assert set(report.reasons) == set(bad) | {"duplicate_id"}
    # Kept cuts load, with the duration the file has.
    for cut in cuts.values():
        audio = cut.load_audio()
        assert audio.shape == (1, cut.num_samples)
    summary = json.loads((tmp_path / "ingest.json").read_text())
    assert summary["num_cuts"] == report.num_cuts


def test_channel_policies(bad_root: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = bad_root
    split = ingest(root / "corpus", tmp_path / "split", channel_policy="split", progress=False)
    cuts = {c.id: c for c in CutSet.from_file(split.cuts_path)}
    assert {cuts["good_stereo_ch0"].channel, cuts["good_stereo_ch1"].channel} == {0, 1}
    reject = ingest(root / "corpus", tmp_path / "reject", channel_policy="reject", progress=False)
    problems = {str(p["id"]): p["reason"] for p in read_quarantine(reject.quarantine_path)}
    assert problems["good_stereo"] == "bad_channels"
    from speechtok.manifests.audio_check import AudioCheckConfig

    six = ingest(root / "corpus", tmp_path / "six", check=AudioCheckConfig(max_channels=8), progress=False)
    assert "six_ch" in {c.id for c in CutSet.from_file(six.cuts_path)}


def test_jsonl_source_problems(bad_root: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = bad_root
    path, expected = make_jsonl(root, root / "corpus")
    report = ingest(path, tmp_path, progress=False)
    assert report.kind == "jsonl"
    cuts, problems = _outcomes(tmp_path)
    for uid, outcome in expected.items():
        if outcome.startswith("kept"):
            assert uid in cuts, (uid, problems.get(uid))
        else:
            assert uid not in cuts
            assert problems[uid][0]["reason"] == outcome, uid
    # the second "j_good" (an ogg file) is a duplicate; the first (wav) is kept
    assert cuts["j_good"].recording.sources[0].source.endswith("good_mono.wav")
    assert [p["reason"] for p in problems["j_good"]] == ["duplicate_id"]
    assert cuts["j_flac"].supervisions[0].language == "en"
    assert cuts["j_flac"].supervisions[0].speaker == "s2"
    assert problems["None"][0]["reason"] == "bad_entry"  # the unparsable line has no id


def test_kaldi_source_problems(bad_root: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = bad_root
    kdir, expected = make_kaldi(root, root / "corpus")
    report = ingest(kdir, tmp_path, progress=False)
    assert report.kind == "kaldi"
    cuts, problems = _outcomes(tmp_path)
    for uid, outcome in expected.items():
        if outcome == "kept":
            assert uid in cuts, (uid, problems.get(uid))
        else:
            assert uid not in cuts
            assert problems[uid][0]["reason"] == outcome, uid
    assert cuts["uA2"].start == pytest.approx(0.5) and cuts["uA2"].duration == pytest.approx(0.5)
    assert cuts["uA1"].supervisions[0].speaker == "spkA"
    assert cuts["uA1"].supervisions[0].text == "FIRST HALF"
    assert "piped command" in str(problems["recD"][0]["detail"])


def test_strict_python_api_raises_on_first_bad(bad_root: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = bad_root
    with pytest.raises(InputError) as err:
        ingest(root / "corpus", tmp_path, strict=True, progress=False)
    assert err.value.item.endswith("const.wav")  # first bad file in sorted order
    assert "constant" in err.value.reason
    assert not (tmp_path / "cuts.jsonl.gz").exists()


def test_cli_exit_codes(bad_root: tuple[Path, dict[str, str]], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = bad_root
    assert main(["ingest", str(root / "corpus"), "-o", str(tmp_path / "a"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "quarantined" in out and "truncated" in out and "silent" in out
    code = main(["ingest", str(root / "corpus"), "-o", str(tmp_path / "b"), "--strict", "--no-progress"])
    assert code != 0
    err = capsys.readouterr().err
    assert "const.wav" in err and "constant" in err
    # Strict on a clean corpus succeeds.
    clean = tmp_path / "clean"
    clean.mkdir()
    for name in ("good_mono.wav", "good_mono.txt", "good_flac.flac", "good_flac.txt"):
        (clean / name).write_bytes((root / "corpus" / name).read_bytes())
    assert main(["ingest", str(clean), "-o", str(tmp_path / "c"), "--strict", "--no-progress"]) == 0
