"""ShardDataset: zero-copy views, projection, iteration, lengths, torch adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.shards.reader import ShardDataset
from speechtok.shards.testing import CODES, FEATS, UNITS, write_dummy_output
from speechtok.shards.writer import commit_group_shard

ALL = ("cuts", UNITS.group, CODES.group, FEATS.group)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("out")
    rows = write_dummy_output(d, num_cuts=11, shard_size=4)
    return d, rows


def test_random_access_matches_written_rows(out: tuple[Path, dict]) -> None:
    d, rows = out
    ds = ShardDataset(d, ALL)
    assert len(ds) == 11 and ds.shards == [0, 1, 2]
    for i in [0, 3, 4, 10, -1, 7]:
        r = ds[i]
        want = {g: rows[g][i] for g in rows}
        assert r["id"] == want["cuts"]["id"]
        assert r["duration"] == want["cuts"]["duration"] and r["speaker"] == want["cuts"]["speaker"]
        assert r["alignment"] == want["cuts"]["alignment"]
        np.testing.assert_array_equal(r[UNITS.group], want[UNITS.group]["units"])
        np.testing.assert_array_equal(r[UNITS.group + ".durations"], want[UNITS.group]["durations"])
        np.testing.assert_array_equal(r[CODES.group], want[CODES.group]["codes"])
        np.testing.assert_array_equal(r[FEATS.group], want[FEATS.group]["feats"])
        assert r[CODES.group].dtype == np.uint16 and r[CODES.group].shape[1] == 4
        assert r[FEATS.group].dtype == np.float16 and r[FEATS.group].shape[1] == 8
    with pytest.raises(IndexError):
        ds[11]


def test_zero_copy_views_into_the_memory_map(out: tuple[Path, dict]) -> None:
    d, rows = out
    ds = ShardDataset(d, ALL)
    r = ds[5]  # shard 1, row 1
    for group in (UNITS.group, CODES.group, FEATS.group):
        view = r[group]
        assert not view.flags.owndata and not view.flags.writeable
        # the whole file as one zero-copy buffer of the same memory mapping
        mm = ds._shard(1)[group]._mmap
        mm.seek(0)
        region = np.frombuffer(mm.read_buffer(), np.uint8)
        assert np.shares_memory(view, region), group
        addr, base = view.__array_interface__["data"][0], region.__array_interface__["data"][0]
        assert base <= addr and addr + view.nbytes <= base + region.size
    # codes: the (T, Q) view is the flat values buffer reshaped, not a copy
    codes = r[CODES.group]
    assert codes.shape == rows[CODES.group][5]["codes"].shape and codes.base is not None


def test_projection_opens_only_requested_groups(out: tuple[Path, dict]) -> None:
    d, rows = out
    ds = ShardDataset(d, (CODES.group,), columns=[CODES.group])
    r = ds[2]
    assert set(r) == {"id", CODES.group}
    assert set(ds._shard(0)) == {CODES.group}
    with pytest.raises(ConfigError):
        ShardDataset(d, (CODES.group,), columns=["units.km50"])
    with pytest.raises(InputError, match="has no group"):
        ShardDataset(d, ("units.nope",))


def test_iteration_and_lengths(out: tuple[Path, dict]) -> None:
    d, rows = out
    ds = ShardDataset(d, ALL)
    ids = [r["id"] for r in ds]
    assert ids == [r["id"] for r in rows["cuts"]]
    assert not ds._open  # streaming closes shards behind it
    np.testing.assert_array_equal(ds.lengths(UNITS.group), [len(r["units"]) for r in rows[UNITS.group]])
    np.testing.assert_array_equal(ds.lengths(CODES.group), [len(r["codes"]) for r in rows[CODES.group]])
    np.testing.assert_array_equal(ds.lengths("cuts"),
                                  [round(r["duration"] * 16000) for r in rows["cuts"]])
    assert ds.lengths(FEATS.group).dtype == np.int64
    assert ds.meta(UNITS.group) == UNITS


def test_partial_output_in_flight(tmp_path: Path) -> None:
    rows = write_dummy_output(tmp_path, num_cuts=8, shard_size=4)
    (tmp_path / "shards" / "00001.units.km50.arrow").unlink()  # "in flight"
    with pytest.raises(InputError, match="in flight"):
        ShardDataset(tmp_path, ("cuts", UNITS.group))
    ds = ShardDataset(tmp_path, ("cuts", UNITS.group), partial=True)
    assert len(ds) == 4 and ds[3]["id"] == rows["cuts"][3]["id"]
    assert len(ShardDataset(tmp_path, ("cuts",))) == 8


def test_zstd_shards_read_the_same(tmp_path: Path, out: tuple[Path, dict]) -> None:
    d, _ = out
    write_dummy_output(tmp_path, num_cuts=11, shard_size=4, compression="zstd")
    a, b = ShardDataset(d, ALL), ShardDataset(tmp_path, ALL)
    for i in range(11):
        for k in (UNITS.group, CODES.group, FEATS.group):
            np.testing.assert_array_equal(a[i][k], b[i][k])


def test_torch_adapter(out: tuple[Path, dict]) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, Dataset

    from speechtok.shards.torch import TorchShardDataset

    d, rows = out
    ds = TorchShardDataset(d, ("cuts", UNITS.group, FEATS.group))
    assert isinstance(ds, Dataset) and len(ds) == 11
    r = ds[4]
    assert r[UNITS.group].dtype == torch.int64 and r[FEATS.group].dtype == torch.float16
    assert r[UNITS.group].tolist() == rows[UNITS.group][4]["units"].tolist()
    loader = DataLoader(ds, batch_size=None, shuffle=False, num_workers=0)
    assert [x["id"] for x in loader] == [c["id"] for c in rows["cuts"]]
    assert ds.lengths(UNITS.group).tolist() == [len(x["units"]) for x in rows[UNITS.group]]


def test_group_with_zero_rows(tmp_path: Path) -> None:
    commit_group_shard(tmp_path, 0, UNITS, [])
    ds = ShardDataset(tmp_path, (UNITS.group,))
    assert len(ds) == 0 and list(ds) == [] and ds.lengths(UNITS.group).shape == (0,)


def test_nbest_and_ctc_groups_roundtrip(tmp_path: Path) -> None:
    from speechtok.shards.schema import GroupMeta

    nbest = GroupMeta(group="nbest.whisper", kind="nbest", stage="asr", stage_version="1",
                      fingerprint="n1")
    ctc = GroupMeta(group="ctc.w2v", kind="ctc", stage="ctc", stage_version="1",
                    fingerprint="c1", dim=5, dtype="float32", frame_rate=50.0)
    commit_group_shard(tmp_path, 0, nbest, [
        {"id": "a", "texts": ["hello world", "hello word"], "scores": [-1.5, -2.25]},
        {"id": "b", "texts": [], "scores": []},
    ])
    commit_group_shard(tmp_path, 0, ctc, [
        {"id": "a", "feats": np.full((3, 5), 0.5)}, {"id": "b", "feats": np.zeros((0, 5))}])
    ds = ShardDataset(tmp_path, ("nbest.whisper", "ctc.w2v"))
    r = ds[0]
    assert r["nbest.whisper"] == ["hello world", "hello word"]
    assert r["nbest.whisper.scores"].tolist() == [-1.5, -2.25]
    assert r["ctc.w2v"].dtype == np.float32 and r["ctc.w2v"].shape == (3, 5)
    assert ds[1]["nbest.whisper"] == [] and ds[1]["ctc.w2v"].shape == (0, 5)
    assert ds.lengths("nbest.whisper").tolist() == [2, 0]
    with pytest.raises(InputError, match="equal lengths"):
        commit_group_shard(tmp_path, 1, nbest, [{"id": "c", "texts": ["x"], "scores": []}])


def test_groups_with_different_record_batches_stay_aligned(tmp_path: Path) -> None:
    """Regression: a feature file rolls record batches by bytes (a row >= BIG_ROW is a batch of
    its own) while its cuts file holds one batch; rows used to be read at the cuts file's
    (batch, row) position in every group, returning another cut's features."""
    from speechtok.shards import writer as shard_mod
    from speechtok.shards.file import ShardFile
    from speechtok.shards.index import ShardIndex, shard_path
    from speechtok.shards.testing import CUTS, dummy_rows

    rows = dummy_rows(9, seed=3)
    big = {3, 4, 7}  # rows over BIG_ROW bytes: each becomes its own record batch
    n_big = shard_mod.BIG_ROW // (8 * 2) + 10
    feats = [{"id": r["id"], "feats": np.full((n_big if i in big else 5 + i, 8), i, np.float16)}
             for i, r in enumerate(rows["cuts"])]
    commit_group_shard(tmp_path, 0, CUTS, rows["cuts"])
    commit_group_shard(tmp_path, 0, FEATS, feats)
    entry = ShardIndex.load(tmp_path).committed(FEATS.group, 0)
    f = ShardFile(shard_path(tmp_path, 0, FEATS.group), entry, group=FEATS.group, checksum=False)
    assert len(f.batch_starts) - 1 > 1  # the feature file really has several batches
    f.close()
    ds = ShardDataset(tmp_path, ("cuts", FEATS.group))
    for i in [0, 2, 3, 4, 5, 6, 7, 8, 1]:
        r = ds[i]
        assert r["id"] == rows["cuts"][i]["id"] and r["text"] == rows["cuts"][i]["text"]
        assert r[FEATS.group].shape[0] == feats[i]["feats"].shape[0], i
        assert float(r[FEATS.group][0, 0]) == i
    assert [float(r[FEATS.group][0, 0]) for r in ds] == list(range(9))
    # the other group order (features first) reads the same rows
    ds2 = ShardDataset(tmp_path, (FEATS.group, "cuts"))
    assert [r["text"] for r in ds2] == [r["text"] for r in rows["cuts"]]
