"""End-to-end runner tests on a tiny generated corpus: resume, refusals, quarantine, arrays."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_runner_util import QUIET, leftovers, make_corpus, small_recipe, snapshot

from speechtok.errors import SpeechtokError
from speechtok.pipeline.executors.local import LocalPoolExecutor
from speechtok.pipeline.lock import LockedError, RunLock
from speechtok.pipeline.runner import RunOptions, run
from speechtok.shards.file import ShardFile
from speechtok.shards.index import ShardIndex, shard_path


def _rows(out: Path, group: str, column: str) -> list[np.ndarray]:
    index = ShardIndex.load(out)
    rows = []
    for e in index.entries(group):
        sf_ = ShardFile(shard_path(out, e.shard, group), e, group=group, checksum=True)
        for b in range(len(sf_.batch_starts) - 1):
            col = sf_.list_column(b, column)
            rows += [np.array(col.row(j)) for j in range(len(col.offsets) - 1)]
        sf_.close()
    return rows


def test_full_run_layout_and_report(reference: Path) -> None:
    index = ShardIndex.load(reference)
    assert index.groups() == ["cuts", "feats.fbank", "units.km"]
    assert [e.shard for e in index.entries("cuts")] == [0, 1, 2, 3]  # 10 cuts, 3 per shard
    for g in index.groups():
        assert sum(e.rows for e in index.entries(g)) == 10
    feats, units = _rows(reference, "feats.fbank", "feats"), _rows(reference, "units.km", "units")
    assert [f.shape[0] for f in feats] == [u.shape[0] for u in units]  # frame-aligned
    assert feats[0].dtype == np.float16 and feats[0].shape[1] == 40
    assert max(int(u.max()) for u in units) < 4
    report = json.loads((reference / "report.json").read_text())
    by_stage = {s["stage"]: s for s in report["stages"]}
    assert by_stage["fbank"]["cuts"] == 10 and by_stage["km"]["fitted"] is True
    assert by_stage["fbank"]["audio_s_per_s"] > 0
    assert report["quarantine"]["count"] == 0
    assert (reference / "models" / "km" / "centroids.safetensors").exists()
    assert leftovers(reference) == [] and not (reference / "run.lock").exists()


def test_rerun_skips_everything(tmp_path: Path, corpus: Path, reference: Path,
                                pool: LocalPoolExecutor) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = snapshot(out)
    rep = run(small_recipe(corpus), out, QUIET, executor=pool)
    assert all(s.shards_run == 0 and s.shards_skipped == 4 for s in rep.stages)
    assert snapshot(out) == before


def test_changed_config_is_refused_then_overwritten(tmp_path: Path, corpus: Path,
                                                   reference: Path,
                                                   pool: LocalPoolExecutor) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = snapshot(out)
    with pytest.raises(SpeechtokError, match=r"--overwrite-stage km") as err:
        run(small_recipe(corpus, k=5), out, QUIET, executor=pool)
    assert "-o" in str(err.value)
    assert snapshot(out) == before  # nothing was changed
    with pytest.raises(SpeechtokError, match=r"--overwrite-stage fbank"):
        run(small_recipe(corpus, **{"fbank.num_mel_bins": 30}), out, QUIET, executor=pool)
    assert snapshot(out) == before
    rep = run(small_recipe(corpus, k=5), out,
              RunOptions(progress=False, overwrite_stages=("km",)), executor=pool)
    stats = {s.stage: s for s in rep.stages}
    assert stats["fbank"].shards_skipped == 4 and stats["km"].shards_run == 4
    after = snapshot(out)
    assert all(after[k] == before[k] for k in before if k.startswith("shards/")
               and "units" not in k)  # cuts and fbank shards untouched
    assert all(after[k] != before[k] for k in before if "units" in k)
    assert max(int(u.max()) for u in _rows(out, "units.km", "units")) == 4  # k=5 now


def test_bad_cuts_are_quarantined_and_the_run_goes_on(tmp_path: Path,
                                                     pool: LocalPoolExecutor) -> None:
    corpus = make_corpus(tmp_path / "corpus", n=7)
    out = tmp_path / "out"
    recipe = small_recipe(corpus)
    run(recipe, out, RunOptions(progress=False, until="cuts"), executor=pool)
    # Break two cuts after ingest validated them: one undecodable, one with NaN samples.
    (corpus / "utt001.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 3)
    wave, sr = sf.read(corpus / "utt004.wav", dtype="float32")
    wave[100:200] = np.nan
    sf.write(corpus / "utt004.wav", wave, sr, subtype="FLOAT")
    rep = run(recipe, out, QUIET, executor=pool)
    q = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    reasons = {(x["stage"], x["id"].split("_")[0][-3:] if "_" in x["id"] else x["id"][-3:],
                x["reason"]) for x in q}
    assert ("fbank", "001", "unreadable") in reasons
    assert ("fbank", "004", "nan_or_inf") in reasons
    assert {r for r in reasons if r[0] == "km"} == {("km", "001", "upstream"),
                                                    ("km", "004", "upstream")}
    feats = _rows(out, "feats.fbank", "feats")
    assert len(feats) == 7 and feats[1].shape == (0, 40) and feats[4].shape == (0, 40)
    assert all(f.shape[0] > 0 for i, f in enumerate(feats) if i not in (1, 4))
    stats = {s.stage: s for s in rep.stages}
    assert stats["fbank"].quarantined == 2 and stats["fbank"].cuts == 7
    report = json.loads((out / "report.json").read_text())
    assert report["quarantine"]["by_reason"]["fbank:unreadable"] == 1


def test_array_tasks_then_fit_give_the_full_run_bytes(tmp_path: Path, corpus: Path,
                                                      reference: Path,
                                                      pool: LocalPoolExecutor) -> None:
    out = tmp_path / "out"
    recipe = small_recipe(corpus)
    arr = [RunOptions(progress=False, until="fbank", shard_index=i, num_shards=2)
           for i in range(2)]
    r0 = run(recipe, out, arr[0], executor=pool)
    assert [s.shards_run for s in r0.stages] == [2, 2]  # data shards 0 and 2
    with pytest.raises(SpeechtokError, match="--fit-only"):
        run(recipe, out, RunOptions(progress=False, shard_index=1, num_shards=2), executor=pool)
    run(recipe, out, arr[1], executor=pool)
    fit = run(recipe, out, RunOptions(progress=False, fit_only=True), executor=pool)
    assert [s.stage for s in fit.stages if s.fitted] == ["km"]
    for i in range(2):
        run(recipe, out, RunOptions(progress=False, shard_index=i, num_shards=2), executor=pool)
    assert snapshot(out) == snapshot(reference)


def test_second_run_is_refused_while_one_holds_the_lock(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out / "run.lock"):
        with pytest.raises(LockedError, match=rf"another run \(pid {os.getpid()}"):
            run(small_recipe(corpus), out, QUIET)
        with pytest.raises(LockedError, match="another run"):
            run(small_recipe(corpus), out, RunOptions(progress=False, shard_index=0,
                                                      num_shards=2))


def test_two_workers_give_the_same_bytes_as_one(tmp_path: Path, corpus: Path,
                                                reference: Path) -> None:
    out = tmp_path / "out"
    rep = run(small_recipe(corpus), out, RunOptions(progress=False, workers=2))
    assert rep.workers == 2 and all(s.shards_run == 4 for s in rep.stages)
    assert snapshot(out) == snapshot(reference)
