"""Crash safety: SIGKILL at many points then resume, disk full, all in subprocesses.

Each run is ``speechtok run`` in a fresh process (``--executor inline``, ``MKL_CBWR`` set, so
the bytes are reproducible) with ``SPEECHTOK_FAULT=POINT:N``. The shard writer calls the two
shard points itself: ``after_tmp_write`` (tmp shard file fsynced, no entry, not renamed) and
``mid_index_update`` (in `write_json_atomic`: a tmp entry file or tmp ``index.json`` written,
not renamed). Per commit the runner writes one entry file; ``index.json`` is regenerated at the
end of each stage that committed something.
"""

from __future__ import annotations

import signal

from test_runner_util import CliSetup, assert_complete, cli_run

from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, shard_path

#: Kill points in the order a run reaches them (10 cuts, 4 shards x 3 groups = 12 commits;
#: each commit writes a tmp shard file and an index entry; each stage that committed ends with
#: an index.json rewrite). Each resumed run is killed at the next point, so every point is
#: reached from a partially written output (and a stale or missing index.json).
CHAIN = [
    "after_ingest",            # manifest written, no shard
    "after_commit:2",          # between two cuts shards
    "after_tmp_write:2",       # mid-shard-write: cuts shard 3's tmp file, not committed
    "mid_index_update:3",      # cuts 3 entry (1), index.json (2), fbank shard 0's entry half written
    "in_process:2",            # inside fbank's processing of shard 1
    "before_commit:2",         # fbank shard 2 computed, nothing written
    "after_fit",               # centroids written, no units shard yet
    "mid_index_update:5",      # units shards 0-3 entries (1-4), then index.json half written
    "before_report",           # everything committed, report not written
]
#: What a mid-index-update kill leaves behind (checked in the chain).
LEFT = {"mid_index_update:3": "index.d/.feats.fbank.00000.json.*.tmp",
        "mid_index_update:5": ".index.json.*.tmp"}


def test_sigkill_at_nine_points_then_resume_is_byte_identical(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "chain"
    for fault in CHAIN:
        proc = cli_run(cli_setup.recipe, out, env={"SPEECHTOK_FAULT": fault})
        assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-2000:])
        if fault in LEFT:
            assert list(out.glob(LEFT[fault])), fault
    proc = cli_run(cli_setup.recipe, out)
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)


def test_sigkill_from_a_pool_worker_kills_the_run_and_resume_matches(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "pool"
    pool = ("--executor", "local", "--workers", "2")
    # a worker kills itself and the runner
    proc = cli_run(cli_setup.recipe, out, env={"SPEECHTOK_FAULT": "in_process:2"}, executor=pool)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = cli_run(cli_setup.recipe, out, executor=pool)
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)


def test_sigkill_mid_shard_write_and_mid_index_update_then_resume(
        cli_setup: CliSetup, cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "mid-write"
    # fbank shard 1: tmp file, not committed
    proc = cli_run(cli_setup.recipe, out, env={"SPEECHTOK_FAULT": "after_tmp_write:6"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert list((out / "shards").glob("*.tmp.*"))  # the kill left the tmp shard behind
    # fbank shards 1-3 write their entries (1-3), then the stage's index.json rewrite (4)
    proc = cli_run(cli_setup.recipe, out, env={"SPEECHTOK_FAULT": "mid_index_update:4"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert list(out.glob(".index.json.*.tmp"))
    proc = cli_run(cli_setup.recipe, out)
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)  # ... and the resumed run cleaned up


def test_disk_full_is_a_clean_error_and_resumable(cli_setup: CliSetup,
                                                  cli_reference: dict[str, str]) -> None:
    out = cli_setup.root / "diskfull"
    # Files may not exceed 12 KB: cuts shards (~4 KB) fit, filterbank shards (~25 KB) do not.
    proc = cli_run(cli_setup.recipe, out, fsize=12_000)
    assert proc.returncode == 1, proc.stderr
    assert "no space left" in proc.stderr and "rerun the same command" in proc.stderr
    assert "Traceback" not in proc.stderr
    index = ShardIndex.load(out)
    assert index.committed_shards("cuts") == [0, 1, 2, 3]
    assert index.committed_shards("feats.fbank") == []
    for e in index.entries("cuts"):  # committed shards intact (checksums verified)
        ShardFile(shard_path(out, e.shard, "cuts"), e, group="cuts", checksum=True).close()
    assert not list((out / "shards").glob("*.tmp*"))
    proc = cli_run(cli_setup.recipe, out)
    assert proc.returncode == 0, proc.stderr
    assert_complete(out, cli_reference)
