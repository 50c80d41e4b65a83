"""Failure classes end to end (issue 14): environment errors fail the shard loudly and a rerun
repairs them; bugs stop the run with their traceback; nothing of a failed shard is committed.

Each run is ``speechtok run`` in a fresh process (`test_runner_util.cli_run`: ``--executor
inline``, ``MKL_CBWR`` set, so bytes are reproducible), as in ``test_runner_faults.py``; both
modules share the ``cli_setup`` / ``cli_reference`` fixtures (``tests/pipeline/conftest.py``).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from test_runner_util import CliSetup, assert_complete, cli_run, leftovers, snapshot, write_recipe

from speechtok.shards.index import ShardIndex

BROKEN = r'''
from speechtok.pipeline.stages.fbank import FbankStage


class BrokenStage(FbankStage):
    type_name = "broken"

    def process(self, batch):
        return [len(item) for item in batch]  # TypeError: a bug in stage code
'''

FAST_RETRY = ("--retries", "2", "--retry-backoff", "0")


def _cut_ids(out: Path) -> dict[str, str]:
    """file stem (``utt002``) -> cut id, from the ingested manifest."""
    ids = {}
    with gzip.open(out / "ingest" / "cuts.jsonl.gz", "rt") as fh:
        for line in fh:
            cut = json.loads(line)
            ids[Path(cut["recording"]["sources"][0]["source"]).stem] = cut["id"]
    return ids


def test_files_moved_away_after_ingest_fail_their_shards_then_rerun_is_identical(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    corpus, root = cli_setup.corpus, cli_setup.root
    out = root / "moved"
    assert cli_run(cli_setup.recipe, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    away = root / "away"
    away.mkdir()
    for stem in ("utt001", "utt007"):  # shards 0 and 2
        shutil.move(corpus / f"{stem}.wav", away / f"{stem}.wav")
    try:
        proc = cli_run(cli_setup.recipe, out, *FAST_RETRY)
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
    proc = cli_run(cli_setup.recipe, out)  # files are back
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)


def test_decoder_eio_fails_the_shard_then_rerun_is_identical(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "eio"
    assert cli_run(cli_setup.recipe, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    bad = [ids["utt004"], ids["utt009"]]  # shards 1 and 3
    proc = cli_run(cli_setup.recipe, out, *FAST_RETRY, env={"SPEECHTOK_FAULT_EIO": ",".join(bad)})
    assert proc.returncode == 1, proc.stderr
    for cut in bad:
        assert cut in proc.stderr
    assert "Input/output error" in proc.stderr and "failed 2 time(s)" in proc.stderr
    assert ShardIndex.load(out).committed_shards("feats.fbank") == [0, 2]
    assert not (out / "shards" / "00001.feats.fbank.arrow").exists()
    proc = cli_run(cli_setup.recipe, out)
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)


def test_a_transient_eio_is_retried_and_loses_nothing(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "transient"
    assert cli_run(cli_setup.recipe, out, "--until", "cuts").returncode == 0
    ids = _cut_ids(out)
    flaky = f"{ids['utt002']}:1,{ids['utt005']}:2"  # fail the first 1 / 2 reads only
    proc = cli_run(cli_setup.recipe, out, "--retries", "3", "--retry-backoff", "0",
                env={"SPEECHTOK_FAULT_EIO": flaky})
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)


def test_a_bug_in_stage_code_stops_the_run_with_its_traceback(
        cli_setup: CliSetup) -> None:
    corpus, root = cli_setup.corpus, cli_setup.root
    (root / "broken_stage.py").write_text(BROKEN)
    recipe = write_recipe(root / "broken.yaml", corpus, stages=[
        {"type": "broken", "name": "broken", "config": {"num_mel_bins": 40}}])
    out = root / "bug"
    proc = cli_run(recipe, out, plugin=(root, "broken", "broken_stage:BrokenStage"))
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
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    corpus, root = cli_setup.corpus, cli_setup.root
    out = root / "requeue"
    assert cli_run(cli_setup.recipe, out, "--until", "cuts").returncode == 0
    good = (corpus / "utt004.wav").read_bytes()
    (corpus / "utt004.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 3)  # undecodable
    try:
        proc = cli_run(cli_setup.recipe, out)
    finally:
        (corpus / "utt004.wav").write_bytes(good)
    assert proc.returncode == 0, proc.stderr
    q = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    assert {(x["stage"], x["reason"]) for x in q} == {("fbank", "unreadable"),
                                                      ("km", "upstream")}
    assert snapshot(out) != cli_reference
    proc = cli_run(cli_setup.recipe, out)  # a plain rerun keeps the committed shards
    assert proc.returncode == 0 and snapshot(out) != cli_reference
    proc = cli_run(cli_setup.recipe, out, "--retry-quarantined", "nan_or_inf")  # no cut has that reason
    assert proc.returncode == 0 and snapshot(out) != cli_reference
    proc = cli_run(cli_setup.recipe, out, "--retry-quarantined", "unreadable")
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)
