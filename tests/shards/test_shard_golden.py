"""The golden v1 output (tests/data/golden_v1, made by scripts/make_golden_v1.py) stays readable."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from speechtok.paths import ROOT
from speechtok.shards.reader import ShardDataset
from speechtok.shards.verify import verify_output

GOLDEN = ROOT / "tests" / "data" / "golden_v1"


def test_golden_v1_reads_with_current_reader() -> None:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    ds = ShardDataset(GOLDEN / "out", ("cuts", "units.km50", "codes.q4", "feats.d8"))
    assert len(ds) == len(expected) == 3 and ds.shards == [0, 1]
    for row, want in zip(ds, expected, strict=True):
        assert row["id"] == want["id"] and row["text"] == want["text"]
        assert row["duration"] == want["duration"]
        assert row["units.km50"].tolist() == want["units.km50"]
        assert row["units.km50.durations"].tolist() == want["units.km50.durations"]
        assert row["codes.q4"].tolist() == want["codes.q4"]
        feats = row["feats.d8"]
        assert feats.dtype == np.float16 and list(feats.shape) == want["feats.d8.shape"]
        assert hashlib.sha256(feats.tobytes()).hexdigest() == want["feats.d8.sha256"]
    assert ds.meta("units.km50").vocab_size == 50
    assert ds.lengths("units.km50").tolist() == [len(w["units.km50"]) for w in expected]


def test_golden_v1_verifies() -> None:
    rep = verify_output(GOLDEN / "out")
    assert rep.ok, rep.problems
