"""Ingest of the real corpora in ../shared: expected counts, durations and texts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.cli import main
from speechtok.manifests.ingest import ingest
from speechtok.manifests.quarantine import read_quarantine

FSDD_RX = r"(?P<text>\d)_(?P<speaker>[a-z]+)_\d+"


def _cuts(path: Path) -> dict[str, object]:
    return {c.id: c for c in CutSet.from_file(path)}


def test_speechocean_kaldi(speechocean_dir: Path, tmp_path: Path) -> None:
    report = ingest(speechocean_dir, tmp_path, progress=False)
    assert report.kind == "kaldi"
    assert report.num_cuts == 1600 and report.num_quarantined == 0 and report.num_flagged == 0
    assert report.num_speakers == 80
    assert report.sampling_rates == {16000: 1600}
    # Hours from the FLAC headers, independently of the ingest code path. (DATA.md says
    # "~1.84 h"; the files hold 1.572 h.)
    lines = (speechocean_dir / "wav.scp").read_text().split("\n")
    header_s = sum(sf.info(str(speechocean_dir / ln.split()[1])).duration for ln in lines if ln.strip())
    assert report.hours == pytest.approx(header_s / 3600, rel=1e-6)
    cuts = _cuts(report.cuts_path)
    c = cuts["000010011"]
    sup = c.supervisions[0]  # type: ignore[attr-defined]
    assert (sup.text, sup.speaker, sup.gender) == ("WE CALL IT BEAR", "0001", "m")
    assert c.recording.sources[0].source.endswith("audio/SPEAKER0001/000010011.flac")  # type: ignore[attr-defined]
    assert c.load_audio().shape == (1, c.num_samples)  # type: ignore[attr-defined]
    # Texts match the Kaldi `text` file line for line.
    text = dict(ln.split(maxsplit=1) for ln in (speechocean_dir / "text").read_text().splitlines() if ln.strip())
    assert {k: v.supervisions[0].text for k, v in cuts.items()} == {k: v.strip() for k, v in text.items()}  # type: ignore[attr-defined]


def _fsdd_subset(fsdd_dir: Path, dst: Path, n: int = 300) -> Path:
    dst.mkdir()
    for name in sorted(os.listdir(fsdd_dir))[:n]:
        (dst / name).symlink_to(fsdd_dir / name)
    return dst


def test_fsdd_subset_labels_and_resampling(fsdd_dir: Path, tmp_path: Path) -> None:
    sub = _fsdd_subset(fsdd_dir, tmp_path / "fsdd")
    report = ingest(sub, tmp_path / "out", label_regex=FSDD_RX, sample_rate=16000, progress=False)
    assert report.num_cuts == 300 and report.num_quarantined == 0 and report.num_flagged == 0
    cuts = _cuts(report.cuts_path)
    c = cuts["0_george_0"]
    assert c.supervisions[0].text == "0" and c.supervisions[0].speaker == "george"  # type: ignore[attr-defined]
    assert c.sampling_rate == 16000 and report.sampling_rates == {16000: 300}
    assert c.recording.transforms[0].to_dict()["kwargs"]["source_sampling_rate"] == 8000  # type: ignore[attr-defined]
    audio = c.load_audio()  # type: ignore[attr-defined]
    assert audio.shape[1] == pytest.approx(2 * sf.info(str(fsdd_dir / "0_george_0.flac")).frames, abs=2)


def test_fsdd_full_via_cli(fsdd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", str(fsdd_dir), "-o", str(tmp_path), "--label-regex", FSDD_RX, "--no-progress"])
    assert code == 0
    assert "3000 cuts" in capsys.readouterr().out
    report = json.loads((tmp_path / "ingest.json").read_text())
    assert report["num_cuts"] == 3000 and report["num_speakers"] == 6
    assert report["sampling_rates"] == {"8000": 3000}
    header_s = sum(sf.info(str(p)).duration for p in fsdd_dir.iterdir())
    assert report["hours"] == pytest.approx(header_s / 3600, rel=1e-6)
    texts: dict[str, int] = {}
    for c in CutSet.from_file(tmp_path / "cuts.jsonl.gz"):
        t = c.supervisions[0].text
        assert c.id.startswith(t + "_")
        texts[t] = texts.get(t, 0) + 1
    assert texts == {str(d): 300 for d in range(10)}


def test_lhotse_cut_manifests(lhotse_fixtures_dir: Path, tmp_path: Path) -> None:
    f = lhotse_fixtures_dir
    # libri: a 10 s cut of a 16.04 s recording; the manifest's path "test/fixtures/libri/..."
    # is rebased onto the fixtures folder.
    r = ingest(f / "libri" / "cuts.json", tmp_path / "libri", progress=False)
    (c,) = CutSet.from_file(r.cuts_path)
    assert (c.duration, c.recording.num_samples, c.supervisions[0].text) == (10.0, 256640, "EXAMPLE OF TEXT")
    assert c.supervisions[0].speaker == "libri-spk1"
    assert c.load_audio().shape == (1, 160000)
    # ljspeech: two cuts with their texts and durations from the manifest.
    src = json.loads((f / "ljspeech" / "cuts.json").read_text())
    r = ingest(f / "ljspeech" / "cuts.json", tmp_path / "lj", progress=False)
    got = {c.id: c for c in CutSet.from_file(r.cuts_path)}
    assert set(got) == {c["id"] for c in src}
    for c in src:
        assert got[c["id"]].duration == pytest.approx(c["duration"], abs=1e-6)
        assert got[c["id"]].supervisions[0].text == c["supervisions"][0]["text"]
        assert got[c["id"]].supervisions[0].custom == c["supervisions"][0]["custom"]
    # ami: one cut with two supervisions, kept as they are.
    r = ingest(f / "ami" / "cuts.json", tmp_path / "ami", progress=False)
    (c,) = CutSet.from_file(r.cuts_path)
    assert [s.text for s in c.supervisions] == ["I'M ABIGAIL CLAFLIN", "YOU CAN CALL ME ABBIE"]
    assert c.duration == 6.0
    # MultiCut: not supported, quarantined with the reason.
    r = ingest(f / "libri" / "cuts_multi.json", tmp_path / "multi", progress=False)
    assert r.num_cuts == 0 and r.reasons == {"unsupported_source": 1}


def test_lhotse_recordings_and_supervisions(lhotse_fixtures_dir: Path, tmp_path: Path) -> None:
    f = lhotse_fixtures_dir
    r = ingest(f / "audio.json", tmp_path / "a", supervisions=f / "supervision.json", progress=False)
    # recording-1 and -4 mix a file with a shell command: unsupported; recording-2 (stereo.wav)
    # has segment-3/-4; recording-3 (stereo.sph) has none and becomes one whole cut.
    # (.sph needs lhotse's sph2pipe: without it recording-3 is unsupported_source too.)
    cuts = _cuts(r.cuts_path)
    assert (cuts["segment-3"].start, cuts["segment-3"].duration) == (0.1, 0.2)  # type: ignore[attr-defined]
    if shutil.which("sph2pipe") is None:
        assert set(cuts) == {"segment-3", "segment-4"}
        assert r.reasons == {"unsupported_source": 3} and r.flags == {"no_transcript": 2}
    else:
        assert set(cuts) == {"segment-3", "segment-4", "recording-3"}
        assert cuts["recording-3"].duration == 1.0  # type: ignore[attr-defined]
        assert r.reasons == {"unsupported_source": 2} and r.flags == {"no_transcript": 3}
    # mini_librispeech: a lazy recordings+supervisions pair whose audio are `sox` commands.
    r = ingest(f / "mini_librispeech" / "lhotse", tmp_path / "mini", progress=False)
    assert r.kind == "lhotse" and r.num_cuts == 0 and r.reasons == {"unsupported_source": 38}
    # ... and its Kaldi dir: piped wav.scp entries, rejected clearly (transcripts not orphaned).
    r = ingest(f / "mini_librispeech", tmp_path / "mini_k", progress=False)
    assert r.kind == "kaldi" and r.reasons == {"unsupported_source": 38}
    assert all("piped command" in str(p["detail"]) for p in read_quarantine(r.quarantine_path))


def test_dir_of_mixed_formats(lhotse_fixtures_dir: Path, tmp_path: Path) -> None:
    """mp3, opus, sph, wav read through the same path; an 8-channel file is bad_channels."""
    d = tmp_path / "mixed"
    d.mkdir()
    names = ["stereo.mp3", "stereo.opus", "stereo.sph", "stereo.wav", "mono_c0.opus", "common_voice_en_651325.mp3"]
    for n in names:
        stem, ext = n.rsplit(".", 1)
        (d / f"{stem}_{ext}.{ext}").symlink_to(lhotse_fixtures_dir / n)
    (d / "real_8ch.wav").symlink_to(lhotse_fixtures_dir / "rir" / "real_8ch.wav")
    r = ingest(d, tmp_path / "out", progress=False)
    cuts = _cuts(r.cuts_path)
    if shutil.which("sph2pipe") is None:  # lhotse needs it for .sph: quarantined with the fix
        names.remove("stereo.sph")
        assert r.reasons == {"bad_channels": 1, "unsupported_source": 1}
    else:
        assert r.reasons == {"bad_channels": 1}
    assert r.flags == {"no_transcript": len(names)}
    assert len(cuts) == len(names)
    for n in names:
        stem, ext = n.rsplit(".", 1)
        cut = cuts[f"{stem}_{ext}"]
        info = sf.info(str(lhotse_fixtures_dir / n))
        assert cut.sampling_rate == info.samplerate  # type: ignore[attr-defined]
        assert cut.duration == pytest.approx(info.duration, abs=0.1)  # type: ignore[attr-defined]
        assert cut.load_audio().shape == (1, cut.num_samples)  # type: ignore[attr-defined]
