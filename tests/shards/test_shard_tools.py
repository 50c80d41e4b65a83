"""`speechtok inspect | verify | export` over a dummy output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from speechtok.cli import main
from speechtok.errors import ConfigError
from speechtok.exports.formats import export_output
from speechtok.shards.inspect import inspect_output
from speechtok.shards.testing import CODES, FEATS, UNITS, write_dummy_output
from speechtok.shards.verify import verify_output


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("out")
    return d, write_dummy_output(d, num_cuts=10, shard_size=4)


def test_inspect(out: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    d, rows = out
    s = inspect_output(d, top_k=3)
    secs = sum(r["duration"] for r in rows["cuts"])
    assert s["hours"] == pytest.approx(secs / 3600)
    u = s["groups"][UNITS.group]
    all_units = np.concatenate([r["units"] for r in rows[UNITS.group]])
    assert u["tokens"] == all_units.size and u["rows"] == 10 and u["shards"] == 3
    assert u["tokens_per_second"] == pytest.approx(all_units.size / secs)
    top_id, top_count = u["top_ids"][0][0]
    assert top_count == np.bincount(all_units).max() and np.bincount(all_units)[top_id] == top_count
    assert len(s["groups"][CODES.group]["top_ids"]) == 4
    assert s["groups"][UNITS.group]["provenance"]["fingerprint"] == UNITS.fingerprint
    assert main(["inspect", str(d)]) == 0
    text = capsys.readouterr().out
    assert "tokens/s" in text and "fingerprint units-fp-1" in text and "h of audio" in text


def test_verify_clean_and_broken(out: tuple[Path, dict], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    d, _ = out
    assert verify_output(d).ok
    assert main(["verify", str(d)]) == 0
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    flip = bad / "shards" / "00001.feats.d8.arrow"
    data = bytearray(flip.read_bytes())
    data[len(data) // 3] ^= 1
    flip.write_bytes(bytes(data))
    (bad / "shards" / "00002.codes.q4.arrow").unlink()
    (bad / "shards" / "00007.units.km50.arrow").write_bytes(b"junk")
    (bad / "shards" / "00003.cuts.arrow.tmp.123").write_bytes(b"junk")
    capsys.readouterr()
    assert main(["verify", str(bad)]) == 1
    text = capsys.readouterr().out
    assert "00001.feats.d8.arrow: sha256" in text
    assert "00002.codes.q4.arrow: indexed but missing" in text
    assert "00007.units.km50.arrow: present but not in the index" in text
    rep = verify_output(bad)
    assert len(rep.problems) == 3 and len(rep.warnings) == 1


def test_export_parquet(out: tuple[Path, dict], tmp_path: Path) -> None:
    d, rows = out
    assert export_output(d, "parquet", tmp_path / "pq") == 10
    t = pq.read_table(tmp_path / "pq" / "00001.parquet")
    assert t.column("id").to_pylist() == [r["id"] for r in rows["cuts"][4:8]]
    assert t.column(CODES.group).to_pylist()[0] == rows[CODES.group][4]["codes"].tolist()
    meta = json.loads(t.schema.metadata[b"speechtok"])
    assert meta[UNITS.group]["vocab_size"] == 50


def test_export_hf_loads_with_datasets(out: tuple[Path, dict], tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    d, rows = out
    assert main(["export", str(d), "--to", "hf", "-o", str(tmp_path / "hf")]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 10 and ds[9]["id"] == rows["cuts"][9]["id"]
    npds = ds.with_format("numpy")
    np.testing.assert_array_equal(npds[3][FEATS.group], rows[FEATS.group][3]["feats"])
    assert ds[2][UNITS.group] == rows[UNITS.group][2]["units"].tolist()


def test_export_lhotse_custom_fields(out: tuple[Path, dict], tmp_path: Path) -> None:
    from lhotse import CutSet

    d, rows = out
    export_output(d, "lhotse", tmp_path / "lh")
    cuts = CutSet.from_file(tmp_path / "lh" / "cuts.jsonl.gz").to_eager()
    assert len(cuts) == 10
    c = cuts[4]
    assert c.id == rows["cuts"][4]["id"] and c.supervisions[0].text == rows["cuts"][4]["text"]
    assert c.custom["units_km50"] == rows[UNITS.group][4]["units"].tolist()
    np.testing.assert_array_equal(c.load_custom("codes_q4"), rows[CODES.group][4]["codes"])
    np.testing.assert_array_equal(c.load_custom("feats_d8"), rows[FEATS.group][4]["feats"])


def test_export_fairseq(out: tuple[Path, dict], tmp_path: Path) -> None:
    d, rows = out
    export_output(d, "fairseq", tmp_path / "fs", groups=[UNITS.group])
    tsv = (tmp_path / "fs" / "train.tsv").read_text().splitlines()
    assert tsv[0] == "." and len(tsv) == 11
    rel, n = tsv[1].split("\t")
    assert rel == rows["cuts"][0]["id"] and int(n) == round(rows["cuts"][0]["duration"] * 16000)
    km = (tmp_path / "fs" / "train.km").read_text().splitlines()
    assert km[3] == " ".join(map(str, rows[UNITS.group][3]["units"].tolist()))
    dic = (tmp_path / "fs" / "dict.km.txt").read_text().splitlines()
    assert len(dic) == 50 and [ln.split()[0] for ln in dic] == [str(i) for i in range(50)]
    counts = np.bincount(np.concatenate([r["units"] for r in rows[UNITS.group]]), minlength=50)
    assert [int(ln.split()[1]) for ln in dic] == counts.tolist()
    with pytest.raises(ConfigError):
        export_output(d, "fairseq", tmp_path / "x", groups=[CODES.group])


def test_export_memmap(out: tuple[Path, dict], tmp_path: Path) -> None:
    d, rows = out
    assert main(["export", str(d), "--to", "memmap", "--group", CODES.group,
                 "-o", str(tmp_path / "mm")]) == 0
    data = np.memmap(tmp_path / "mm" / "train.bin", dtype=np.uint16, mode="r")
    off = np.load(tmp_path / "mm" / "train.offsets.npy")
    assert off.dtype == np.int64 and len(off) == 11 and off[-1] == data.size
    np.testing.assert_array_equal(data[off[6] : off[7]].reshape(-1, 4), rows[CODES.group][6]["codes"])
    info = json.loads((tmp_path / "mm" / "train.json").read_text())
    assert info["num_codebooks"] == 4 and info["vocab_size"] == 1024
    ids = (tmp_path / "mm" / "train.ids.txt").read_text().split()
    assert ids == [r["id"] for r in rows["cuts"]]
    # no unique token group -> a clear error
    with pytest.raises(ConfigError):
        export_output(d, "memmap", tmp_path / "y")


def test_export_fairseq_with_audio_paths(tmp_path: Path) -> None:
    from lhotse import AudioSource, Recording
    from lhotse.cut import MonoCut

    from speechtok.shards.testing import CUTS
    from speechtok.shards.writer import commit_group_shard

    recs = [Recording(id=f"r{i}", sources=[AudioSource(type="file", channels=[0],
                                                      source=f"/data/a/sub{i}/r{i}.wav")],
                      sampling_rate=16000, num_samples=16000, duration=1.0) for i in range(2)]
    cuts = [MonoCut(id=f"c{i}", start=0.0, duration=1.0, channel=0, recording=r)
            for i, r in enumerate(recs)]
    commit_group_shard(tmp_path / "o", 0, CUTS, [
        {"id": c.id, "start": 0.0, "duration": 1.0, "sampling_rate": 16000, "cut": c.to_dict()}
        for c in cuts])
    commit_group_shard(tmp_path / "o", 0, UNITS, [{"id": c.id, "units": [1, 2]} for c in cuts])
    export_output(tmp_path / "o", "fairseq", tmp_path / "fs")
    tsv = (tmp_path / "fs" / "train.tsv").read_text().splitlines()
    assert tsv == ["/data/a", "sub0/r0.wav\t16000", "sub1/r1.wav\t16000"]
    assert (tmp_path / "fs" / "train.km").read_text() == "1 2\n1 2\n"


def test_export_is_atomic_and_refuses_a_nonempty_destination(out: tuple[Path, dict], tmp_path: Path) -> None:
    from speechtok.errors import InputError

    d, _ = out
    dest = tmp_path / "exp"
    export_output(d, "memmap", dest, groups=[UNITS.group])
    first = sorted(p.name for p in dest.iterdir())
    (dest / "stale.txt").write_text("from an earlier export")
    with pytest.raises(InputError, match="--overwrite"):
        export_output(d, "fairseq", dest, groups=[UNITS.group])
    assert (dest / "stale.txt").exists()  # refused before anything was written
    assert main(["export", str(d), "--to", "fairseq", "--group", UNITS.group, "-o", str(dest)]) == 1
    export_output(d, "memmap", dest, groups=[UNITS.group], overwrite=True)
    assert sorted(p.name for p in dest.iterdir()) == first  # replaced whole: no stale file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # no temporary left
    with pytest.raises(ConfigError, match="outside"):
        export_output(d, "memmap", d / "inside", groups=[UNITS.group])


@pytest.mark.parametrize("what", ["missing", "file", "empty"])
def test_inspect_verify_read_refuse_what_is_not_an_output(tmp_path: Path, what: str) -> None:
    from speechtok.errors import InputError
    from speechtok.shards.reader import ShardDataset

    src = tmp_path / "src"
    if what == "file":
        src.write_text("x")
    elif what == "empty":
        src.mkdir()
    reason = {"missing": "does not exist", "file": "is a file", "empty": "no index entries"}[what]
    # inspect used to print "0.0000 h of audio" and exit 0; the reader said "has no group 'cuts'; it has []"
    for call in (lambda: inspect_output(src), lambda: ShardDataset(src)):
        with pytest.raises(InputError, match=reason) as err:
            call()
        assert err.value.item == str(src)
    rep = verify_output(src)
    assert not rep.ok and len(rep.problems) == 1 and rep.problems[0][0] == str(src)
    assert reason in rep.problems[0][1]


def test_verify_sample_and_inspect_top_k_must_make_sense(out: tuple[Path, dict]) -> None:
    d, _ = out
    # --sample -1 was a ValueError traceback; 0 checked no file and reported OK
    for n in (0, -1):
        with pytest.raises(ConfigError, match=f"`sample` must be >= 1, but is {n}"):
            verify_output(d, sample=n)
    with pytest.raises(ConfigError, match="`top_k` must be >= 0, but is -1"):
        inspect_output(d, top_k=-1)  # listed every id but the last (a numpy slice)
    assert verify_output(d, sample=1).ok


@pytest.mark.parametrize("split", ["../evil", "a/b", "", ".hidden", "x" * 65])
def test_export_split_cannot_leave_the_destination(out: tuple[Path, dict], tmp_path: Path, split: str) -> None:
    d, _ = out
    dest = tmp_path / "exp" / "fs"
    with pytest.raises(ConfigError, match="`split` must be 1-64 characters"):
        export_output(d, "fairseq", dest, groups=[UNITS.group], split=split)
    assert not (tmp_path / "exp").exists()  # "../evil" wrote exp/evil.tsv next to the destination


def test_export_split_with_dots_and_dashes_is_fine(out: tuple[Path, dict], tmp_path: Path) -> None:
    d, _ = out
    export_output(d, "fairseq", tmp_path / "fs", groups=[UNITS.group], split="dev-clean.2")
    assert (tmp_path / "fs" / "dev-clean.2.tsv").is_file()


def test_out_of_vocab_ids_are_reported_by_verify_and_inspect(out: tuple[Path, dict], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # a payload flip that keeps the structure valid (the index rewritten to match) used to pass
    # `verify` and show up in `inspect` only as an odd id in the histogram
    import pyarrow as pa

    from speechtok.features.checksum import file_sha256
    from speechtok.shards.index import entry_path

    src, _ = out
    d = tmp_path / "o"
    shutil.copytree(src, d)
    p = d / "shards" / f"00000.{UNITS.group}.arrow"
    table = pa.ipc.open_file(pa.BufferReader(p.read_bytes())).read_all()
    units = [list(u) for u in table.column("units").to_pylist()]
    units[1][0] = 999  # vocab_size is 50
    table = table.set_column(1, table.schema.field(1), pa.array(units, type=table.schema.field(1).type))
    with pa.ipc.new_file(str(p), table.schema) as w:
        w.write_table(table)
    e = entry_path(d, UNITS.group, 0)
    entry = json.loads(e.read_text())
    entry.update(bytes=p.stat().st_size, sha256=file_sha256(p))
    e.write_text(json.dumps(entry))
    rep = verify_output(d)
    assert not rep.ok and any("holds id 999 >= vocab_size 50" in why for _, why in rep.problems)
    assert inspect_output(d)["groups"][UNITS.group]["out_of_vocab"] > 0
    assert main(["inspect", str(d)]) == 1
    assert "CORRUPT:" in capsys.readouterr().out
    assert "out_of_vocab" not in inspect_output(src)["groups"][UNITS.group]
