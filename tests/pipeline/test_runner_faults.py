"""Crash safety: SIGKILL at many points then resume, disk full, all in subprocesses.

Each run is ``speechtok run`` in a fresh process (``--executor inline``, ``MKL_CBWR`` set, so
the bytes are reproducible) with ``SPEECHTOK_FAULT=POINT:N``. The shard writer calls the two
shard points itself: ``after_tmp_write`` (tmp shard file fsynced, no entry, not renamed) and
``mid_index_update`` (in `write_json_atomic`: a tmp entry file or tmp ``index.json`` written,
not renamed). Per commit the runner writes one entry file; ``index.json`` is regenerated at the
end of each stage that committed something.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_runner_util import leftovers, make_corpus, snapshot

from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, shard_path

DRIVER = r'''
import sys
from speechtok.cli import main
sys.exit(main(sys.argv[1:]))
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


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("faults")
    corpus = make_corpus(root / "corpus", n=10)
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "vars": {"corpus": str(corpus), "k": 4}}))
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    return recipe, driver, root


def _run(setup: tuple[Path, Path, Path], out: Path, fault: str | None = None,
         fsize: int | None = None, executor: tuple[str, ...] = ("--executor", "inline")
         ) -> subprocess.CompletedProcess[str]:
    recipe, driver, _ = setup
    env = {**os.environ, "MKL_CBWR": "AUTO,STRICT", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SPEECHTOK_FAULT", None)
    if fault:
        env["SPEECHTOK_FAULT"] = fault

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, str(driver), "run", str(recipe), "-o", str(out), *executor,
         "--no-progress"], env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=limit)


@pytest.fixture(scope="module")
def reference(setup: tuple[Path, Path, Path]) -> dict[str, str]:
    out = setup[2] / "reference"
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    return snapshot(out)


def _check_complete(out: Path, reference: dict[str, str]) -> None:
    assert snapshot(out) == reference
    assert leftovers(out) == []
    index = ShardIndex.load(out)
    for group in index.groups():
        ids: list[str] = []
        for e in index.entries(group):
            sf = ShardFile(shard_path(out, e.shard, group), e, group=group, checksum=True)
            ids += sf.all_ids().to_pylist()
            sf.close()
        assert len(ids) == 10 and len(set(ids)) == 10  # no duplicated, no missing rows


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
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    out = setup[2] / "chain"
    for fault in CHAIN:
        proc = _run(setup, out, fault)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-2000:])
        if fault in LEFT:
            assert list(out.glob(LEFT[fault])), fault
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    _check_complete(out, reference)


def test_sigkill_from_a_pool_worker_kills_the_run_and_resume_matches(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    out = setup[2] / "pool"
    pool = ("--executor", "local", "--workers", "2")
    proc = _run(setup, out, "in_process:2", executor=pool)  # a worker kills itself and the runner
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = _run(setup, out, executor=pool)
    assert proc.returncode == 0, proc.stderr
    _check_complete(out, reference)


def test_sigkill_mid_shard_write_and_mid_index_update_then_resume(
        setup: tuple[Path, Path, Path], reference: dict[str, str]) -> None:
    out = setup[2] / "mid-write"
    proc = _run(setup, out, "after_tmp_write:6")  # fbank shard 1: tmp file, not committed
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert list((out / "shards").glob("*.tmp.*"))  # the kill left the tmp shard behind
    # fbank shards 1-3 write their entries (1-3), then the stage's index.json rewrite (4)
    proc = _run(setup, out, "mid_index_update:4")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert list(out.glob(".index.json.*.tmp"))
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    _check_complete(out, reference)  # ... and the resumed run cleaned up


def test_disk_full_is_a_clean_error_and_resumable(setup: tuple[Path, Path, Path],
                                                  reference: dict[str, str]) -> None:
    out = setup[2] / "diskfull"
    # Files may not exceed 12 KB: cuts shards (~4 KB) fit, filterbank shards (~25 KB) do not.
    proc = _run(setup, out, fsize=12_000)
    assert proc.returncode == 1, proc.stderr
    assert "no space left" in proc.stderr and "rerun the same command" in proc.stderr
    assert "Traceback" not in proc.stderr
    index = ShardIndex.load(out)
    assert index.committed_shards("cuts") == [0, 1, 2, 3]
    assert index.committed_shards("feats.fbank") == []
    for e in index.entries("cuts"):  # committed shards intact (checksums verified)
        ShardFile(shard_path(out, e.shard, "cuts"), e, group="cuts", checksum=True).close()
    assert not list((out / "shards").glob("*.tmp*"))
    proc = _run(setup, out)
    assert proc.returncode == 0, proc.stderr
    _check_complete(out, reference)
