"""Quarantined rows never reach a trainer unannounced; missing speakers/texts are never invented
(issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import InputError
from speechtok.shards.reader import ShardDataset
from speechtok.shards.testing import CODES, CUTS, FEATS, UNITS, dummy_rows
from speechtok.shards.writer import commit_group_shard
from speechtok.trainers.token.dataset import load_utterances
from speechtok.trainers.token.recipe import TokenDataConfig


def _output(out: Path, *, drop_speaker: tuple[int, ...] = (), drop_text: tuple[int, ...] = (),
            quarantine: dict[str, list[int]] | None = None) -> dict[str, list[dict]]:
    """A dummy output of 10 cuts (shards of 4) with some labels removed and some rows quarantined
    (empty payload in the group, reason in quarantine.d, as the runner writes them)."""
    rows = dummy_rows(10)
    for i in drop_speaker:
        rows["cuts"][i]["speaker"] = None
    for i in drop_text:
        rows["cuts"][i]["text"] = None
    for group, idx in (quarantine or {}).items():
        for i in idx:
            rows[group][i] = {"id": rows[group][i]["id"], "units": np.zeros(0, np.uint16),
                              "durations": np.zeros(0, np.uint16)}
            qfile = out / "quarantine.d" / f"{group}.{i // 4:05d}.jsonl"
            qfile.parent.mkdir(parents=True, exist_ok=True)
            with qfile.open("a") as fh:
                fh.write(json.dumps({"id": rows[group][i]["id"], "stage": "km", "shard": i // 4,
                                     "reason": "nan_features", "detail": "test"}) + "\n")
    for shard, lo in enumerate(range(0, 10, 4)):
        for meta in (CUTS, UNITS, CODES, FEATS):
            commit_group_shard(out, shard, meta, rows[meta.group][lo:lo + 4])
    return rows


def test_shard_dataset_skips_quarantined_rows_and_reports_them(tmp_path: Path) -> None:
    rows = _output(tmp_path, quarantine={UNITS.group: [1, 6]})
    ds = ShardDataset(tmp_path, ("cuts", UNITS.group))
    want = [r["id"] for i, r in enumerate(rows["cuts"]) if i not in (1, 6)]
    assert len(ds) == 8 and [r["id"] for r in ds] == want and [ds[i]["id"] for i in range(8)] == want
    assert ds[-1]["id"] == want[-1]
    assert ds.num_quarantined == 2 and ds.quarantined == {"cut-0001": "km: nan_features",
                                                          "cut-0006": "km: nan_features"}
    assert len(ds.lengths(UNITS.group)) == 8 and (ds.lengths(UNITS.group) > 0).all()
    every = ShardDataset(tmp_path, ("cuts", UNITS.group), include_quarantined=True)
    assert len(every) == 10 and every.num_quarantined == 2 and len(every[1][UNITS.group]) == 0
    assert len(ShardDataset(tmp_path, ("cuts", FEATS.group))) == 10  # not quarantined in that group


def test_token_trainer_skips_quarantined_and_unlabelled_rows(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _output(tmp_path, drop_speaker=(2,), drop_text=(3,), quarantine={UNITS.group: [5]})
    utts, vocab = load_utterances(TokenDataConfig(shards=str(tmp_path), units=UNITS.group, tasks=("unitlm", "asr")))
    assert vocab == 50
    assert [u.id for u in utts] == [f"cut-{i:04d}" for i in range(10) if i not in (2, 3, 5)]
    assert all(u.speaker.startswith("spk") for u in utts)  # never the cut id
    out = capsys.readouterr().out
    assert ("7 rows used; left out 1 quarantined" in out and "1 without a speaker" in out
            and "1 without a target text" in out)
    # a unit LM needs no text: that row stays
    utts, _ = load_utterances(TokenDataConfig(shards=str(tmp_path), units=UNITS.group, tasks=("unitlm",)))
    assert "cut-0003" in {u.id for u in utts}


def test_no_usable_row_is_an_error(tmp_path: Path) -> None:
    _output(tmp_path, drop_speaker=tuple(range(10)))
    with pytest.raises(InputError, match="no usable row"):
        load_utterances(TokenDataConfig(shards=str(tmp_path), units=UNITS.group))


def test_latent_split_skips_quarantined_and_unlabelled_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechtok.trainers.latent.train import LatentDataConfig, _split
    from speechtok.trainers.token.recipe import SplitConfig

    rows = dummy_rows(10)
    rows["cuts"][0]["speaker"] = None
    rows["cuts"][4]["text"] = None
    rows[FEATS.group][7] = {"id": rows[FEATS.group][7]["id"], "feats": np.zeros((0, 8), np.float16)}
    (tmp_path / "quarantine.d").mkdir()
    (tmp_path / "quarantine.d" / f"{FEATS.group}.00001.jsonl").write_text(
        json.dumps({"id": "cut-0007", "stage": "fbank", "shard": 1, "reason": "nan_or_inf", "detail": ""}) + "\n")
    for shard, lo in enumerate(range(0, 10, 4)):
        for meta in (CUTS, FEATS):
            commit_group_shard(tmp_path, shard, meta, rows[meta.group][lo:lo + 4])
    tr, dv, lengths = _split(LatentDataConfig(shards=str(tmp_path), feats=FEATS.group), SplitConfig(train=0.5, seed=1))
    used = sorted(tr.indices + dv.indices)
    assert len(lengths) == 9 and len(used) == 7  # 10 rows - 1 quarantined - 1 no speaker - 1 no text
    ids = {tr.ds[i]["id"] for i in used}
    assert ids.isdisjoint({"cut-0000", "cut-0004", "cut-0007"})
    assert "left out 1 quarantined" in capsys.readouterr().out
