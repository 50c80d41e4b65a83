"""N-best records, JSONL cache, merging, PocketSphinx filler merging, HyPoradise JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import InputError
from speechtok.models.nbest import Hypothesis, NBestList, read_jsonl, write_jsonl
from speechtok.trainers.cascade.hyporadise import (
    build_prompt,
    hp_record,
    read_hyporadise,
    write_hyporadise,
)
from speechtok.trainers.cascade.nbest import merge_equivalent
from speechtok.trainers.cascade.nbest_sphinx import clean_sphinx_text, merge_filler_variants


def _nb(uid: str, texts: list[str], ref: str | None = "We call it bear") -> NBestList:
    return NBestList(
        id=uid,
        source="whisper",
        reference=ref,
        speaker="0001",
        duration=2.5,
        hyps=tuple(
            Hypothesis(text=t, rank=r, am_score=-1.0 - r, am_score_norm=(-1.0 - r) / 4, num_tokens=4)
            for r, t in enumerate(texts)
        ),
    )


def test_jsonl_round_trip_and_append(tmp_path: Path) -> None:
    a = _nb("a", ["We call it Bill.", "we call it bill"])
    b = _nb("b", ["x"], ref=None)
    p = tmp_path / "nb.jsonl"
    assert write_jsonl(p, [a]) == 1
    assert write_jsonl(p, [b], append=True) == 1
    assert list(read_jsonl(p)) == [a, b]


def test_torn_last_line_is_skipped_but_a_bad_middle_line_raises(tmp_path: Path) -> None:
    p = tmp_path / "nb.jsonl"
    write_jsonl(p, [_nb("a", ["x"])])
    with open(p, "a") as f:
        f.write('{"id": "b", "hyps": [')
    assert [nb.id for nb in read_jsonl(p)] == ["a"]
    with open(p, "a") as f:
        f.write("\n" + json.dumps(_nb("c", ["y"]).to_json()) + "\n")
    with pytest.raises(InputError, match="not valid JSON"):
        list(read_jsonl(p))


def test_merge_equivalent_keeps_best_ranked_of_each_normalised_text() -> None:
    nb = _nb("a", ["We call it Bill.", "We call it bill", "we call it bear", "We call it Bill!"])
    m = merge_equivalent(nb)
    assert m.texts() == ["We call it Bill.", "we call it bear"]
    assert [h.rank for h in m.hyps] == [0, 1]
    assert m.hyps[1].am_score == nb.hyps[2].am_score
    assert len(merge_equivalent(nb, key="exact").hyps) == 4


def test_sphinx_filler_cleaning_and_merging() -> None:
    assert clean_sphinx_text("<s> <sil> three [NOISE] two(2) ++UH++ </s>") == "three two"
    paths = [
        ("<s> three two </s>", -1.0),
        ("three <sil> two", -1.5),
        ("three two(2)", -1.7),
        ("tree two", -2.0),
        ("three [NOISE] two", -2.5),
        ("three too", -3.0),
    ]
    merged = merge_filler_variants(paths, num_hypotheses=5)
    assert merged == [("three two", -1.0), ("tree two", -2.0), ("three too", -3.0)]
    assert merge_filler_variants(paths, num_hypotheses=2) == merged[:2]


def test_hyporadise_record_fields_dedupe_and_padding() -> None:
    nb = _nb("u1", ["We call it Bill.", "we call it bill", "We call it bear.", ""])
    rec = hp_record(nb, num_hypotheses=5)
    assert set(rec) == {"id", "input", "output", "am_score", "input1", "input2"}
    assert rec["input"] == ["we call it bill", "we call it bear", "we call it bear", "we call it bear",
                            "we call it bear"]
    assert rec["output"] == "we call it bear"
    assert rec["input1"] == "we call it bill"
    assert rec["input2"] == "\n".join(rec["input"][1:])  # type: ignore[index]
    assert len(rec["am_score"]) == 5  # type: ignore[arg-type]
    assert "we call it bill" in build_prompt(rec, "h2t") and "### Response:" in build_prompt(rec, "h2t")


def test_hyporadise_json_round_trip(tmp_path: Path) -> None:
    lists = [_nb("u1", ["a b", "a c"]), _nb("u2", ["d", "e", "f"], ref="D")]
    p = tmp_path / "train.json"
    assert write_hyporadise(p, lists, num_hypotheses=3) == 2
    data = json.loads(p.read_text())
    assert isinstance(data, list) and data[0]["input"] == ["a b", "a c", "a c"]
    back = read_hyporadise(p)
    assert [nb.id for nb in back] == ["u1", "u2"]
    assert back[1].texts() == ["d", "e", "f"] and back[1].reference == "d"
    assert [h.am_score for h in back[0].hyps] == data[0]["am_score"]
    # The H2T-LoRA view (input1/input2 only) reads back too.
    p2 = tmp_path / "h2t.json"
    p2.write_text(json.dumps([{"input1": "x y", "input2": "x z\nx w", "output": "x y"}]))
    assert read_hyporadise(p2)[0].texts() == ["x y", "x z", "x w"]
    p2.write_text(json.dumps({"input": []}))
    with pytest.raises(InputError, match="JSON list"):
        read_hyporadise(p2)


def test_nbest_shards_round_trip(tmp_path: Path) -> None:
    from speechtok.trainers.cascade.nbest_shards import read_nbest_shards, write_nbest_shards

    lists = [_nb("u1", ["We call it Bill.", "we call it bear"]), _nb("u2", ["three two", "tree two", "3 2"])]
    rows, nbytes = write_nbest_shards(tmp_path / "out", lists, name="whisper", config={"beam": 5})
    assert rows == 2 and nbytes > 0
    back = read_nbest_shards(tmp_path / "out", name="whisper")
    assert [nb.id for nb in back] == ["u1", "u2"]
    assert back[1].texts() == ["three two", "tree two", "3 2"]
    np.testing.assert_allclose([h.am_score for h in back[1].hyps], [h.am_score for h in lists[1].hyps])
    again = tmp_path / "again"
    write_nbest_shards(again, lists, name="whisper", config={"beam": 5})
    a = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    assert a == sorted(p.name for p in (again / "shards").iterdir())
    for name in a:  # same input, same bytes
        assert (tmp_path / "out" / "shards" / name).read_bytes() == (again / "shards" / name).read_bytes()
