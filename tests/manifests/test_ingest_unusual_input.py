"""Unusual input on the way in (found by an adversarial sweep of `speechtok ingest`): byte-order
marks, CRLF, non-UTF-8 lines and file names, lone surrogates, NaN/inf/boolean numbers, lists
where text belongs, sub-sample segments, manifests whose every line is broken, paths relative
to the manifest. Each is kept when it is good, quarantined with its reason when it is not, and
never a crash or a silent loss."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from speechtok.manifests.cutbuild import BuildConfig, process_item
from speechtok.manifests.ingest import ingest
from speechtok.manifests.items import SegmentSpec, SourceItem
from speechtok.manifests.quarantine import read_quarantine

SR = 16000


def _tone(path: Path, seconds: float = 0.5, sr: int = SR) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def _ingest(source: Path, out: Path, **kw: object) -> tuple[dict[str, object], dict[str, list[str]]]:
    """Ingests; returns ({cut id: cut}, {id or origin: [reasons]}) (flags of kept cuts left out)."""
    ingest(source, out, progress=False, **kw)  # type: ignore[arg-type]
    cuts = {c.id: c for c in CutSet.from_file(out / "cuts.jsonl.gz") or []}  # None when empty
    problems: dict[str, list[str]] = {}
    for rec in read_quarantine(out / "quarantine.jsonl"):
        if rec["kept"]:
            continue
        key = str(rec["id"]) if rec["id"] is not None else str(rec["origin"]).rsplit("/", 1)[-1]
        problems.setdefault(key, []).append(str(rec["reason"]))
    return cuts, problems


def test_dir_sidecar_with_bom_and_crlf_reads_clean_text(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "a.wav")
    (corpus / "a.txt").write_bytes("\ufeffhello there\r\n".encode())
    cuts, _ = _ingest(corpus, tmp_path / "out")
    assert cuts["a"].supervisions[0].text == "hello there"  # was "\ufeffhello there"


def test_dir_file_name_that_is_not_utf8_is_quarantined_not_a_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "good.wav")
    _tone(corpus / "tmp.wav")
    os.rename(bytes(corpus / "tmp.wav"), bytes(corpus) + b"/caf\xe9.wav")  # a latin-1 name
    cuts, problems = _ingest(corpus, tmp_path / "out")  # raised UnicodeEncodeError before
    assert list(cuts) == ["good"]
    assert problems == {"caf\\udce9": ["unreadable"]}
    (rec,) = [r for r in read_quarantine(tmp_path / "out" / "quarantine.jsonl") if not r["kept"]]
    assert "\\udce9" in str(rec["detail"]) and "rename" in str(rec["detail"])


def test_wav_whose_data_was_cut_off_entirely_is_truncated_not_empty(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    whole = _tone(tmp_path / "whole.wav").read_bytes()
    (corpus / "hdr.wav").write_bytes(whole[:44])  # the header says 16000 bytes follow; none do
    _, problems = _ingest(corpus, tmp_path / "out")
    assert problems["hdr"] == ["truncated"]


def test_jsonl_lines_users_write_by_hand(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", seconds=1.0)
    good = {"audio": "a.wav", "text": "ok"}

    def line(**kw: object) -> bytes:
        return json.dumps({**good, **kw}).encode()

    lines = [
        b"\xef\xbb\xbf" + line(id="bom") + b"\r",  # a BOM and CRLF: was a bad_entry
        b'{"audio": "a.wav", "id": "latin1", "text": "caf\xe9"}',  # was a UnicodeDecodeError crash
        b'{"audio": "a.wav", "id": "surrogate", "text": "x\\udcffy"}',  # was a crash writing cuts
        b'{"audio": "a.wav", "id": "nan_start", "start": NaN, "duration": 0.5}',  # was kept, start nan
        b'{"audio": "a.wav", "id": "inf_dur", "duration": Infinity}',
        line(id="bool_start", start=True),  # was start=1.0
        line(id="list_text", text=["a", "b"]),  # was the text "['a', 'b']"
        line(id="half_channel", channel=0.5),  # was channel 0
        line(id="sub_sample", start=0.1, duration=1e-9),  # was a cut of 0 samples
        line(id="num_text", text=7),  # digits are text (FSDD)
        line(id="str_times", start="0.25", duration="0.5"),
    ]
    manifest = tmp_path / "list.jsonl"
    manifest.write_bytes(b"\n".join(lines) + b"\n")
    cuts, problems = _ingest(manifest, tmp_path / "out")
    assert sorted(cuts) == ["bom", "num_text", "str_times"]
    assert cuts["num_text"].supervisions[0].text == "7"
    assert (cuts["str_times"].start, cuts["str_times"].duration) == (0.25, 0.5)
    assert problems == {
        "list.jsonl:2": ["bad_entry"], "list.jsonl:3": ["bad_entry"], "nan_start": ["bad_entry"],
        "inf_dur": ["bad_entry"], "bool_start": ["bad_entry"], "list_text": ["bad_entry"],
        "half_channel": ["bad_entry"], "sub_sample": ["bad_segment"],
    }
    details = {str(r["origin"]).rsplit(":", 1)[-1]: str(r["detail"])
               for r in read_quarantine(tmp_path / "out" / "quarantine.jsonl")}
    assert "byte 0xe9 at column" in details["2"] and "\\udcff" in details["3"]
    assert "start: must be finite, but is nan" in details["4"]
    assert "text: must be a string or a number, but is ['a', 'b']" in details["7"]


def test_manifest_whose_every_line_is_broken_is_not_silently_empty(tmp_path: Path) -> None:
    manifest = tmp_path / "all_bad.jsonl"
    manifest.write_text('{"audio": "a.wav", broken\n{also broken\n')
    report = ingest(manifest, tmp_path / "out", progress=False)
    assert report.num_cuts == 0 and report.reasons == {"bad_entry": 2}  # was 0 quarantined


def test_nemo_non_finite_offset_is_a_bad_entry(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", seconds=1.0)
    manifest = tmp_path / "m.json"
    manifest.write_text('{"audio_filepath": "a.wav", "offset": NaN, "duration": 0.5, "text": "x"}\n'
                        '{"audio_filepath": "a.wav", "offset": 0.25, "duration": 0.5, "text": "y"}\n')
    cuts, problems = _ingest(manifest, tmp_path / "out")
    assert list(cuts) == ["a-00000250-00000500"] and problems == {"a": ["bad_entry"]}


def test_kaldi_bom_crlf_and_non_utf8_lines(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", seconds=1.0)
    d = tmp_path / "kaldi"
    d.mkdir()
    (d / "wav.scp").write_bytes(b"\xef\xbb\xbfr1 ../a.wav\r\nr2 ../caf\xe9.wav\r\nr3 ../a.wav\r\n")
    (d / "text").write_bytes("\ufeffr1 hello\r\nr3 world\r\n".encode())
    (d / "utt2spk").write_bytes(b"r1 s1\r\nr3 s3\r\n")
    cuts, problems = _ingest(d, tmp_path / "out")  # the latin-1 line was a UnicodeDecodeError crash
    assert sorted(cuts) == ["r1", "r3"]  # r1 was "\ufeffr1", its text an orphan
    assert cuts["r1"].supervisions[0].text == "hello" and cuts["r1"].supervisions[0].speaker == "s1"
    assert problems == {"wav.scp:2": ["bad_entry"]}


def test_kaldi_non_finite_segment_times_are_bad_entries_reported_once(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav", seconds=1.0)
    d = tmp_path / "kaldi"
    d.mkdir()
    (d / "wav.scp").write_text("r1 ../a.wav\n")
    (d / "segments").write_text("u1 r1 0.0 0.5\nu2 r1 nan 0.5\nu3 r1 0.1 inf\nu4 r1 \xe9 1\n")
    (d / "text").write_text("u1 a\nu2 b\nu3 c\n")
    cuts, problems = _ingest(d, tmp_path / "out")
    assert list(cuts) == ["u1"]  # u2 was kept with start=nan, duration=nan
    assert problems == {"u2": ["bad_entry"], "u3": ["bad_entry"], "u4": ["bad_entry"]}


def test_non_finite_segment_from_any_source_is_a_bad_segment(tmp_path: Path) -> None:
    """The guard in `process_item` covers sources that do not parse numbers themselves (lhotse)."""
    wav = _tone(tmp_path / "a.wav", seconds=1.0)
    segs = (SegmentSpec(id="nan", start=float("nan")), SegmentSpec(id="inf", duration=float("inf")),
            SegmentSpec(id="ok", start=0.5))
    res = process_item(SourceItem(recording_id="a", path=wav, origin="t", segments=segs), BuildConfig())
    assert [c.id for c in res.cuts] == ["ok"]
    assert {p.id: p.reason for p in res.problems if not p.kept} == {"nan": "bad_segment", "inf": "bad_segment"}


def test_paths_relative_to_the_manifest_work_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data" / "wavs").mkdir(parents=True)
    _tone(tmp_path / "data" / "wavs" / "a.wav")
    (tmp_path / "data" / "list.jsonl").write_text('{"audio": "wavs/a.wav", "text": "x"}\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    ingest(Path("data/list.jsonl"), Path("out"), progress=False)
    monkeypatch.chdir(tmp_path / "elsewhere")
    (cut,) = CutSet.from_file(tmp_path / "out" / "cuts.jsonl.gz")
    assert Path(cut.recording.sources[0].source).is_absolute()  # was "data/wavs/a.wav"
    assert cut.load_audio().shape == (1, SR // 2)


def test_rerun_after_quarantine_gives_the_same_outputs(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "good.wav")
    (corpus / "bad.wav").write_text("not audio")
    (corpus / "orphan.txt").write_text("no audio\n")
    out = tmp_path / "out"

    def contents() -> dict[str, bytes]:  # the gzip header holds the write time: compare the data
        return {p.name: gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
                for p in sorted(out.iterdir())}

    first = ingest(corpus, out, progress=False)
    before = contents()
    second = ingest(corpus, out, progress=False)
    assert contents() == before and sorted(before) == ["cuts.jsonl.gz", "ingest.json", "quarantine.jsonl"]
    assert first.reasons == second.reasons == {"no_audio_for_transcript": 1, "unreadable": 1}


def _rec(rid: str, path: Path) -> dict[str, object]:
    return {"id": rid, "sources": [{"type": "file", "channels": [0], "source": str(path)}],
            "sampling_rate": SR, "num_samples": SR, "duration": 1.0}


def test_lhotse_bad_supervision_loses_only_itself(tmp_path: Path) -> None:
    wav = _tone(tmp_path / "a.wav", seconds=1.0)
    sup = {"recording_id": "r1", "channel": 0, "text": "t"}
    sups = [dict(sup, id="ok", start=0.0, duration=0.5), dict(sup, id="no_duration", start=0.5),
            dict(sup, id="negative", start=0.6, duration=-0.2), dict(sup, id="nan", start=0.1, duration=float("nan"))]
    (tmp_path / "recordings.jsonl").write_text(json.dumps(_rec("r1", wav)) + "\n")
    (tmp_path / "supervisions.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sups))
    cuts, problems = _ingest(tmp_path / "recordings.jsonl", tmp_path / "out")
    assert list(cuts) == ["ok"]  # the whole recording was a bad_entry "r1"
    assert problems == {"no_duration": ["bad_entry"], "negative": ["bad_segment"], "nan": ["bad_segment"]}


def test_lhotse_cut_problems_name_the_cut_not_its_recording(tmp_path: Path) -> None:
    wav = _tone(tmp_path / "a.wav", seconds=1.0)
    cut = {"type": "MonoCut", "start": 0.0, "duration": 0.5, "channel": 0, "recording": _rec("r1", wav)}
    sup = {"recording_id": "r1", "start": 0.0, "duration": 0.5, "text": "t"}
    cuts_in = [dict(cut, id="good", supervisions=[dict(sup, id="s1")]),
               dict(cut, id="neg_sup", supervisions=[dict(sup, id="s2", duration=-1.0)]),
               dict(cut, id="bogus_sup", supervisions=[dict(sup, id="s3", bogus=1)]),
               dict(cut, id="gone", recording=_rec("r2", tmp_path / "missing.wav"), supervisions=[])]
    (tmp_path / "cuts.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cuts_in))
    cuts, problems = _ingest(tmp_path / "cuts.jsonl", tmp_path / "out")
    assert list(cuts) == ["good"]  # "neg_sup" was kept with a supervision of duration -1
    assert problems == {"neg_sup": ["bad_segment"], "bogus_sup": ["bad_entry"], "gone": ["missing_file"]}


def test_dir_sidecar_in_upper_case_is_the_transcript(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "A.wav")
    (corpus / "A.TXT").write_text("shouted\n")
    cuts, problems = _ingest(corpus, tmp_path / "out")
    assert cuts["A"].supervisions[0].text == "shouted" and problems == {}  # was kept without text


def test_hf_ids_that_collide_as_file_names_or_are_too_long_or_null(tmp_path: Path) -> None:
    import io

    datasets = pytest.importorskip("datasets")

    def flac(seed: int) -> bytes:
        buf = io.BytesIO()
        t = np.arange(SR // 4) / SR
        sf.write(buf, (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t)).astype(np.float32), SR, format="FLAC")
        return buf.getvalue()

    ids = ["a/b", "a_b", None, "x" * 300, "words"]
    rows = {"id": ids, "audio": [{"bytes": flac(i), "path": f"{i}.flac"} for i in range(len(ids))],
            "text": ["one", "two", "three", "four", "five"]}
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    ds.save_to_disk(str(tmp_path / "ds"))
    # the 300-character id stopped the ingest (ENAMETOOLONG, retried as an I/O error); "a/b" and
    # "a_b" were both extracted to a_b.flac, the second overwriting the first's audio
    cuts, problems = _ingest(tmp_path / "ds", tmp_path / "out", kind="hf", extract_flac=True)
    assert sorted(cuts) == sorted(["a/b", "a_b", "x" * 300, "words"])
    assert problems == {"data-00000-of-00001.arrow:2": ["bad_entry"]}  # was the id "None"
    files = {str(c.recording.sources[0].source) for c in cuts.values()}
    assert len(files) == 4 and all(len(Path(f).name) < 255 for f in files)
    for seed, cid in ((0, "a/b"), (1, "a_b")):
        assert cuts[cid].load_audio().shape == (1, SR // 4)  # type: ignore[attr-defined]
        assert sf.read(str(cuts[cid].recording.sources[0].source))[0].size == SR // 4  # type: ignore[attr-defined]
        assert Path(str(cuts[cid].recording.sources[0].source)).read_bytes() == flac(seed)  # type: ignore[attr-defined]


def test_channel_split_id_that_a_file_also_has_is_a_duplicate(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    t = np.arange(SR // 2) / SR
    stereo = np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 300 * t)], axis=1) * 0.3
    sf.write(corpus / "x.wav", stereo.astype(np.float32), SR, subtype="PCM_16")
    _tone(corpus / "x_ch1.wav")  # the name the split gives x.wav's channel 1
    for stem in ("x", "x_ch1"):
        (corpus / f"{stem}.txt").write_text(f"{stem}\n")
    cuts, problems = _ingest(corpus, tmp_path / "out", channel_policy="split")
    assert sorted(cuts) == ["x_ch0", "x_ch1"]  # the manifest held two cuts "x_ch1"
    assert cuts["x_ch1"].recording.sources[0].source.endswith("x.wav")  # type: ignore[attr-defined]
    assert problems == {"x_ch1": ["duplicate_id"]}


def test_header_with_an_absurd_sampling_rate_is_quarantined(tmp_path: Path) -> None:
    import struct

    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "low.wav", sr=1000)  # the lowest rate accepted by default
    b = bytearray(_tone(tmp_path / "x.wav").read_bytes())
    b[24:32] = struct.pack("<II", 1, 2)  # a corrupt header: 1 Hz (1 s of samples became 2.2 hours)
    (corpus / "one_hz.wav").write_bytes(bytes(b))
    cuts, problems = _ingest(corpus, tmp_path / "out")
    assert list(cuts) == ["low"] and problems == {"one_hz": ["bad_sampling_rate"]}
    cuts, problems = _ingest(corpus, tmp_path / "out2", check={"min_sampling_rate": 1})
    assert sorted(cuts) == ["low", "one_hz"] and problems == {}


def test_fifo_and_device_named_like_audio_are_quarantined_not_skipped_or_read(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    _tone(corpus / "good.wav")
    (corpus / "good.txt").write_text("fine\n")
    os.mkfifo(corpus / "pipe.wav")  # was skipped silently by the walk
    (corpus / "zero.wav").symlink_to("/dev/zero")  # was "empty: file has 0 bytes"
    _tone(corpus / "side.wav")
    os.mkfifo(corpus / "side.txt")  # a sidecar that must not be opened (reading a FIFO blocks)
    cuts, problems = _ingest(corpus, tmp_path / "out")
    assert list(cuts) == ["good"]
    assert problems == {"pipe": ["unreadable"], "zero": ["unreadable"], "side": ["bad_entry"]}


def test_urls_in_manifests_are_unsupported_sources_not_missing_files(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav")
    (tmp_path / "list.jsonl").write_text('{"audio": "a.wav", "id": "local"}\n'
                                         '{"audio": "https://example.org/b.wav", "id": "web"}\n'
                                         '{"audio": "s3://bucket/c.flac", "id": "s3"}\n')
    _, problems = _ingest(tmp_path / "list.jsonl", tmp_path / "out")
    assert problems == {"web": ["unsupported_source"], "s3": ["unsupported_source"]}  # were missing_file
    d = tmp_path / "kaldi"
    d.mkdir()
    (d / "wav.scp").write_text("r1 ../a.wav\nr2 https://example.org/b.wav\n")
    _, problems = _ingest(d, tmp_path / "out2")
    assert problems == {"r2": ["unsupported_source"]}
    (tmp_path / "nemo.json").write_text('{"audio_filepath": "http://example.org/n.wav", "text": "x"}\n')
    _, problems = _ingest(tmp_path / "nemo.json", tmp_path / "out3")
    assert problems == {"n": ["unsupported_source"]}


def test_auto_kind_is_not_fooled_by_a_first_entry_without_audio(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav")
    (tmp_path / "list.jsonl").write_text('{"id": "text_only", "text": "no audio here"}\n'
                                         '{"audio": "a.wav", "text": "ok"}\n')
    cuts, problems = _ingest(tmp_path / "list.jsonl", tmp_path / "out")  # was "holds lhotse unknown"
    assert list(cuts) == ["a"] and problems == {"text_only": ["no_audio_for_transcript"]}
    (tmp_path / "nemo.json").write_text('{bad line\n{"audio_filepath": "a.wav", "text": "ok"}\n')
    cuts, problems = _ingest(tmp_path / "nemo.json", tmp_path / "out2")
    assert list(cuts) == ["a"] and problems == {"nemo.json:1": ["bad_entry"]}
