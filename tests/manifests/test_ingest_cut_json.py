"""The fast cut serialiser writes exactly what lhotse's `to_dict` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_corpus_maker import make_dir_corpus, make_kaldi
from lhotse import CutSet, MonoCut, SupervisionSegment
from lhotse.supervision import AlignmentItem

from speechtok.manifests.cut_json import cut_to_dict
from speechtok.manifests.ingest import ingest


def _same(cut: MonoCut) -> None:
    assert json.dumps(cut_to_dict(cut)) == json.dumps(cut.to_dict())


def test_fast_dict_equals_lhotse_on_ingested_cuts(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_dir_corpus(corpus)
    kdir, _ = make_kaldi(tmp_path, corpus)
    for src, kw in ((corpus, {}), (kdir, {}), (corpus, {"channel_policy": "split"}), (corpus, {"sample_rate": 8000})):
        rep = ingest(src, tmp_path / "o", progress=False, **kw)  # type: ignore[arg-type]
        cuts = list(CutSet.from_file(rep.cuts_path))
        assert cuts
        for c in cuts:
            _same(c)


def test_fast_dict_equals_lhotse_on_odd_cuts(lhotse_fixtures_dir: Path) -> None:
    for name in ("libri/cuts.json", "ljspeech/cuts.json", "ami/cuts.json"):
        for c in CutSet.from_file(lhotse_fixtures_dir / name):
            _same(c)  # features present: falls back to lhotse
            _same(c.drop_features())
    sup = SupervisionSegment(
        id="s", recording_id="r", start=0, duration=1, channel=[0, 1], custom={"a": [1, None, {"b": None}]},
        alignment={"word": [AlignmentItem("hi", 0.0, 0.5)]},
    )
    c = MonoCut(id="c", start=0, duration=1, channel=0, supervisions=[sup])
    _same(c)
    _same(c.with_custom("x", {"k": 1}))


@pytest.mark.parametrize("custom", [None, {"speed": 1.1}, {"nested": {"x": [1, 2]}}])
def test_custom_fields(custom: dict | None, lhotse_fixtures_dir: Path) -> None:
    c = next(iter(CutSet.from_file(lhotse_fixtures_dir / "ljspeech" / "cuts.json"))).drop_features()
    c.custom = custom
    _same(c)
