"""`speechtok units report` over a shard output directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechtok.cli import main
from speechtok.shards import testing as shard_testing


def test_units_report_cli(tmp_path, capsys) -> None:
    rows = shard_testing.write_dummy_output(tmp_path / "out", num_cuts=24, shard_size=5)
    labels = tmp_path / "labels.jsonl"
    with open(labels, "w") as f:
        for i, r in enumerate(rows["units.km50"]):
            frames = int(r["durations"].sum())
            rec = {"id": r["id"], "label": str(i % 3), "group": f"spk{i % 4}"}
            if i % 2 == 0:
                rec["frame_labels"] = ["a"] * frames
            f.write(json.dumps(rec) + "\n")
    rc = main(["units", "report", str(tmp_path / "out"), "--labels", str(labels),
               "-o", str(tmp_path / "rep")])
    assert rc == 0
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    units = rows["units.km50"]
    assert doc["k"] == 50 and doc["num_utterances"] == 24
    assert doc["num_frames"] == sum(int(r["durations"].sum()) for r in units)
    expected = np.zeros(50, int)
    for r in units:
        np.add.at(expected, r["units"].astype(int), r["durations"].astype(int))
    assert doc["counts"] == expected.tolist()
    assert doc["num_labelled_frames"] == sum(int(r["durations"].sum()) for r in units[::2])
    assert doc["pnmi"] == pytest.approx(1.0)  # a single label: nothing left to explain
    assert doc["probe_accuracy"] is not None and doc["frame_rate"] == 50.0
    assert "| dead units |" in capsys.readouterr().out


def test_units_report_cli_errors(tmp_path, capsys) -> None:
    shard_testing.write_dummy_output(tmp_path / "out", num_cuts=4)
    rc = main(["units", "report", str(tmp_path / "out"), "--probe-regex", "fsdd",
               "-o", str(tmp_path / "rep")])
    assert rc == 1 and "does not match --probe-regex" in capsys.readouterr().err


@pytest.mark.parametrize(("cut_id", "label", "group"),
                         [("0_george_12", "0", "george"), ("fsdd-7_yweweler_3", "7", "yweweler")])
def test_fsdd_probe_regex(cut_id: str, label: str, group: str) -> None:
    import re

    from speechtok.commands.units import FSDD_REGEX

    m = re.search(FSDD_REGEX, cut_id)
    assert m is not None and (m.group("label"), m.group("group")) == (label, group)


@pytest.mark.parametrize(("extra", "message"), [
    (["--probe-regex", "("], "`--probe-regex` must be a valid regular expression"),
    (["--probe-regex", r"\d+"], "must have the named groups"),
    (["--labels", "MISSING"], "cannot be read as a UTF-8 labels file"),
    (["--k", "0"], "`--k` must be >= 2, but is 0"),
    (["--k", "-3"], "`--k` must be >= 2, but is -3"),
    (["--group", "feats.d8"], "`--group` must be a units group"),
])
def test_units_report_bad_arguments_are_named(tmp_path, capsys, extra: list[str], message: str) -> None:
    # each of these used to end in a traceback (re.error, FileNotFoundError) or a wrong message
    shard_testing.write_dummy_output(tmp_path / "out", num_cuts=4)
    extra = [str(tmp_path / "missing.jsonl") if a == "MISSING" else a for a in extra]
    rc = main(["units", "report", str(tmp_path / "out"), *extra, "-o", str(tmp_path / "rep")])
    assert rc == 1 and message in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("what", ["missing", "file", "empty"])
def test_units_report_on_something_that_is_not_an_output(tmp_path, capsys, what: str) -> None:
    src = tmp_path / "src"
    if what == "file":
        src.write_text("x")
    elif what == "empty":
        src.mkdir()
    rc = main(["units", "report", str(src), "-o", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert rc == 1 and str(src) in err
    assert {"missing": "does not exist", "file": "is a file", "empty": "no index entries"}[what] in err
