"""`compare` proves its split: held-out speakers once, scored ids checked, test-only WER, honest title."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.compare.families import TEXT
from speechtok.compare.report import markdown
from speechtok.compare.split_proof import (
    SplitProofError,
    data_description,
    heldout_split,
    split_scores,
)
from speechtok.trainers.hyps import hyp_record, write_hyps
from speechtok.trainers.metrics import wer
from speechtok.trainers.token.recipe import SplitConfig
from speechtok.trainers.token.synthetic import write_synthetic_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("syn"), num_cuts=40)


def test_heldout_speakers_are_the_trainers_and_split_into_dev_and_test(shards: Path) -> None:
    held = heldout_split(shards, 0.5, 0)
    trainer = SplitConfig(train=0.5, seed=0)
    for spk, part in held.part_of.items():
        assert (part == "train") == trainer.is_train(spk)
    s = held.summary()
    assert s["dev_speakers"] and s["test_speakers"]
    assert not set(s["dev_speakers"]) & set(s["test_speakers"])
    assert s["dev_utts"] + s["test_utts"] + s["train_utts"] == 40


def test_split_scores_are_test_only_and_foreign_ids_fail(shards: Path) -> None:
    held = heldout_split(shards, 0.5, 0)
    dev_ids, test_ids = sorted(held.ids("dev")), sorted(held.ids("test"))
    recs = [hyp_record(i, "a b", "a b") for i in dev_ids] + [hyp_record(i, "a c", "a b") for i in test_ids]
    s = split_scores(held, "latent", recs)
    assert s["dev_wer"] == 0.0 and s["test_wer"] == pytest.approx(0.5)
    assert s["test_utts"] == len(test_ids) and s["dev_utts"] == len(dev_ids)
    assert s["test_wer"] == wer(["a b"] * len(test_ids), ["a c"] * len(test_ids)).rate
    train_id = sorted(held.ids("train"))[0]
    with pytest.raises(SplitProofError, match=r"latent: 1 of .* not of the held-out"):
        split_scores(held, "latent", [*recs, hyp_record(train_id, "x", "y")])
    with pytest.raises(SplitProofError, match="not in the shards"):
        split_scores(held, "token", [hyp_record("elsewhere-1", "x", "y")])


def test_text_family_test_wer_and_foreign_speakers_fail(shards: Path, tmp_path: Path) -> None:
    held = heldout_split(shards, 0.5, 0)
    run = tmp_path / "text"
    run.mkdir()
    res = {"results": {"dev": {"rescored_lm": 0.1, "ger": 0.3}, "test": {"rescored_lm": 0.2, "ger": 0.05}},
           "utterances": {"train": 1, "dev": 2, "test": 3}}
    (run / "results.json").write_text(json.dumps(res))
    speakers = {p: held.speakers(p) for p in ("train", "dev", "test")}
    (run / "splits.json").write_text(json.dumps({"speakers": speakers}))
    for part in ("dev", "test"):
        write_hyps(run / f"ger_{part}.jsonl", [{"id": i} for i in sorted(held.ids(part))])
    out = TEXT.prove_split(run, held)
    assert out["test_wer"] == 0.2 and out["dev_wer"] == 0.1  # the dev-chosen system, test only
    assert out["scored_ids_checked"] == len(held.ids("dev")) + len(held.ids("test"))
    (run / "splits.json").write_text(json.dumps({"speakers": {**speakers, "test": ["someone-else"]}}))
    with pytest.raises(SplitProofError, match="test speakers"):
        TEXT.prove_split(run, held)
    (run / "splits.json").write_text(json.dumps({"speakers": speakers}))
    write_hyps(run / "ger_test.jsonl", [{"id": i} for i in sorted(held.ids("dev"))])  # dev ids scored as test
    with pytest.raises(SplitProofError, match="held-out test speakers"):
        TEXT.prove_split(run, held)


def test_title_and_data_line_describe_the_data_used(shards: Path, tmp_path: Path) -> None:
    held = heldout_split(shards, 0.5, 0)
    (tmp_path / "report.json").write_text(json.dumps({"ingest": {"source": "/data/fsdd/audio"}}))
    d = data_description(shards, held, None)
    assert d["corpus"] == shards.name and "40 utterances" in d["line"]
    import shutil

    other = tmp_path / "other"
    shutil.copytree(shards, other)
    (other / "report.json").write_text(json.dumps({"ingest": {"source": "/data/fsdd/audio"}}))
    d2 = data_description(other, held, None)
    assert d2["corpus"] == "audio" and d2["title"].startswith("audio,") and "/data/fsdd/audio" in d2["line"]
    meta = {"title": d2["title"], "data": d2["line"], "description": "speechocean762-train80 recipe",
            "heldout": held.summary()}
    md = markdown(meta, [{"family": "latent", "status": "ok", "test_wer": 0.5, "dev_wer": 0.25, "wer": 0.4}])
    assert md.splitlines()[0] == f"# speechtok compare: {d2['title']}"
    for spk in held.speakers("test"):
        assert md.count(spk) == 1  # listed once
    assert "| test WER % | dev WER % | dev+test WER % |" in md and "| 50.0 | 25.0 | 40.0 |" in md


def test_an_interrupted_shard_build_is_not_complete(tmp_path: Path) -> None:
    from speechtok.compare import shards_complete
    from speechtok.shards.index import shard_path
    from speechtok.shards.testing import write_dummy_output

    write_dummy_output(tmp_path, num_cuts=9)
    assert shards_complete(tmp_path, ["feats.d8", "units.km50"])
    assert not shards_complete(tmp_path, ["feats.d8", "units.km500"])  # a group never built
    shard_path(tmp_path, 1, "units.km50").unlink()  # as if the build died with that shard in flight
    assert not shards_complete(tmp_path, ["feats.d8", "units.km50"])
    assert not shards_complete(tmp_path / "missing", ["feats.d8"])
