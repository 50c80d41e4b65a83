"""Failure classes end to end (issue 14): environment errors fail the shard loudly and a rerun
repairs them; bugs stop the run with their traceback; nothing of a failed shard is committed.

Each run is ``speechtok run`` in a fresh process (``--executor inline``, ``MKL_CBWR`` set, so
bytes are reproducible), as in ``test_runner_faults.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_runner_util import leftovers, make_corpus, snapshot

from speechtok.shards.index import ShardIndex

DRIVER = r'''
import sys
sys.path.insert(0, sys.argv.pop(1))
from speechtok.pipeline.stage import register_stage_type
register_stage_type("broken", "broken_stage:BrokenStage")
from speechtok.cli import main
sys.exit(main(sys.argv[1:]))
'''

BROKEN = r'''
from speechtok.pipeline.stages.fbank import FbankStage


class BrokenStage(FbankStage):
    type_name = "broken"

    def process(self, batch):
        return [len(item) for item in batch]  # TypeError: a bug in stage code
'''

RECIPE = {
    "vars": {"corpus": "", "k": 4},
    "ingest": {"source": "${corpus}", "sample_rate": 16000},
    "shards": {"cuts_per_shard": 3},
    "stages": [
        {"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
        {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
         "config": {"k": "${k}", "iterations": 4, "frame_budget": 3000}},
    ],
}
FAST_RETRY = ("--retries", "2", "--retry-backoff", "0")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("failures")
    corpus = make_corpus(root / "corpus", n=10)
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "vars": {"corpus": str(corpus), "k": 4}}))
    (root / "broken_stage.py").write_text(BROKEN)
    (root / "driver.py").write_text(DRIVER)
    return recipe, corpus, root


def _run(setup: tuple[Path, Path, Path], out: Path, *flags: str, recipe: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    default_recipe, _, root = setup
    full_env = {**os.environ, "MKL_CBWR": "AUTO,STRICT", "PYTHONDONTWRITEBYTECODE": "1"}
    for var in ("SPEECHTOK_FAULT", "SPEECHTOK_FAULT_EIO"):
        full_env.pop(var, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(root / "driver.py"), str(root), "run",
         str(recipe or default_recipe), "-o", str(out), "--executor", "inline", "--no-progress",
         *flags], env=full_env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(setup: tuple[Path, Path, Path]) -> dict[str, str]:
    out = setup[2] / "reference"
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    return snapshot(out)


def _cut_ids(out: Path) -> dict[str, str]:
    """file stem (``utt002``) -> cut id, from the ingested manifest."""
    ids = {}
    with gzip.open(out / "ingest" / "cuts.jsonl.gz", "rt") as fh:
        for line in fh:
            cut = json.loads(line)
            ids[Path(cut["recording"]["sources"][0]["source"]).stem] = cut["id"]
    return ids


def _assert_clean_and_identical(out: Path, reference: dict[str, str]) -> None:
    assert snapshot(out) == reference
    assert leftovers(out) == []
    assert (out / "quarantine.jsonl").read_text() == ""  # 0 cuts lost


def test_files_moved_away_after_ingest_fail_their_shards_then_rerun_is_identical(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    _, corpus, root = setup
    out = root / "moved"
    assert _run(setup, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    away = root / "away"
    away.mkdir()
    for stem in ("utt001", "utt007"):  # shards 0 and 2
        shutil.move(corpus / f"{stem}.wav", away / f"{stem}.wav")
    try:
        proc = _run(setup, out, *FAST_RETRY)
    finally:
        for stem in ("utt001", "utt007"):
            shutil.move(away / f"{stem}.wav", corpus / f"{stem}.wav")
    assert proc.returncode == 1, proc.stderr
    for stem in ("utt001", "utt007"):
        assert ids[stem] in proc.stderr and "missing" in proc.stderr
    assert "nothing of them was committed" in proc.stderr
    index = ShardIndex.load(out)
    assert index.committed_shards("feats.fbank") == [1, 3]  # nothing of shards 0 and 2
    assert not list((out / "quarantine.d").glob("*.jsonl"))  # not quarantined either
    assert leftovers(out) == []
    proc = _run(setup, out)  # files are back
    assert proc.returncode == 0, proc.stderr
    _assert_clean_and_identical(out, reference)


def test_decoder_eio_fails_the_shard_then_rerun_is_identical(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    out = setup[2] / "eio"
    assert _run(setup, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    bad = [ids["utt004"], ids["utt009"]]  # shards 1 and 3
    proc = _run(setup, out, *FAST_RETRY, env={"SPEECHTOK_FAULT_EIO": ",".join(bad)})
    assert proc.returncode == 1, proc.stderr
    for cut in bad:
        assert cut in proc.stderr
    assert "Input/output error" in proc.stderr and "failed 2 time(s)" in proc.stderr
    assert ShardIndex.load(out).committed_shards("feats.fbank") == [0, 2]
    assert not (out / "shards" / "00001.feats.fbank.arrow").exists()
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    _assert_clean_and_identical(out, reference)


def test_a_transient_eio_is_retried_and_loses_nothing(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    out = setup[2] / "transient"
    assert _run(setup, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    flaky = f"{ids['utt002']}:1,{ids['utt005']}:2"  # fail the first 1 / 2 reads only
    proc = _run(setup, out, "--retries", "3", "--retry-backoff", "0",
                env={"SPEECHTOK_FAULT_EIO": flaky})
    assert proc.returncode == 0, proc.stderr
    _assert_clean_and_identical(out, reference)


def test_a_bug_in_stage_code_stops_the_run_with_its_traceback(
        setup: tuple[Path, Path, Path]) -> None:
    _, corpus, root = setup
    recipe = root / "broken.yaml"
    recipe.write_text(yaml.safe_dump({
        **RECIPE, "vars": {"corpus": str(corpus), "k": 4},
        "stages": [{"type": "broken", "name": "broken", "config": {"num_mel_bins": 40}}]}))
    out = root / "bug"
    proc = _run(setup, out, recipe=recipe)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" in proc.stderr and "TypeError" in proc.stderr
    assert "broken_stage.py" in proc.stderr  # the traceback points into the stage's code
    assert "(bug)" in proc.stderr and "stopped at the first bug" in proc.stderr
    index = ShardIndex.load(out)
    assert index.committed_shards("cuts") == [0, 1, 2, 3]
    assert index.entries("feats.broken") == []  # nothing committed
    assert not list((out / "shards").glob("*.feats.broken.*"))
    assert leftovers(out) == []


def test_retry_quarantined_reprocesses_the_cuts_after_a_fix(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    _, corpus, root = setup
    out = root / "requeue"
    assert _run(setup, out, "--until", "cuts").returncode == 0
    good = (corpus / "utt004.wav").read_bytes()
    (corpus / "utt004.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 3)  # undecodable
    try:
        proc = _run(setup, out)
    finally:
        (corpus / "utt004.wav").write_bytes(good)
    assert proc.returncode == 0, proc.stderr
    q = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    assert {(x["stage"], x["reason"]) for x in q} == {("fbank", "unreadable"),
                                                      ("km", "upstream")}
    assert snapshot(out) != reference
    proc = _run(setup, out)  # a plain rerun keeps the committed shards
    assert proc.returncode == 0 and snapshot(out) != reference
    proc = _run(setup, out, "--retry-quarantined", "nan_or_inf")  # no cut has that reason
    assert proc.returncode == 0 and snapshot(out) != reference
    proc = _run(setup, out, "--retry-quarantined", "unreadable")
    assert proc.returncode == 0, proc.stderr
    _assert_clean_and_identical(out, reference)
