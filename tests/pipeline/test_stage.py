"""Stage protocol, fingerprints, recipes and --set, the run lock, fault-spec parsing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speechtok.config import canonical_json, fingerprint_of, parse_sets
from speechtok.errors import ConfigError, SpeechtokError
from speechtok.faults import _targets
from speechtok.paths import ROOT
from speechtok.pipeline.lock import LockedError, RunLock, read_lock
from speechtok.pipeline.recipe import load_recipe, recipe_from_dict
from speechtok.pipeline.stage import Stage
from speechtok.pipeline.stage_types import build_stage
from speechtok.tokenizers.units import dedup as dedup_units

FBANK = {"type": "fbank", "name": "fbank", "input": None, "config": {"num_mel_bins": 40}}


def test_fingerprint_is_canonical_and_sensitive() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert fingerprint_of({"a": 1, "b": 2}) == fingerprint_of({"b": 2, "a": 1})
    stage = build_stage(FBANK)
    assert isinstance(stage, Stage)
    fp = stage.fingerprint("up1")
    assert fp == build_stage(FBANK).fingerprint("up1")  # same spec, same fingerprint
    assert fp != stage.fingerprint("up2")  # upstream enters
    other = build_stage({**FBANK, "config": {"num_mel_bins": 80}})
    assert fp != other.fingerprint("up1")  # config enters
    renamed = build_stage({**FBANK, "name": "fb2"})
    assert fp != renamed.fingerprint("up1")  # name (and so group) enters
    assert stage.group() == "feats.fbank" and renamed.group() == "feats.fb2"


def test_model_checksum_enters_fingerprint() -> None:
    stage = build_stage({"type": "kmeans_units", "name": "km", "input": "feats.fbank",
                         "config": {"k": 4}})
    before = stage.fingerprint("up")
    stage.model_checksum = lambda: "abc"  # type: ignore[method-assign]
    assert stage.fingerprint("up") != before
    assert stage.fit_fingerprint("up") == build_stage(stage.spec()).fit_fingerprint("up")


def test_build_stage_rejects_bad_configs() -> None:
    with pytest.raises(ConfigError, match="num_mel_binz"):
        build_stage({**FBANK, "config": {"num_mel_binz": 3}})
    with pytest.raises(ConfigError, match="dtype"):
        build_stage({**FBANK, "config": {"dtype": "int8"}})
    with pytest.raises(ConfigError, match="must be one of"):
        build_stage({"type": "nope", "name": "x"})
    with pytest.raises(ConfigError, match="features group"):
        build_stage({"type": "kmeans_units", "name": "km", "input": None, "config": {"k": 4}})
    with pytest.raises(ConfigError, match="k"):
        build_stage({"type": "kmeans_units", "name": "km", "input": "feats.x", "config": {"k": 1}})


def test_dedup_units_run_lengths() -> None:
    units = np.array([3, 3, 3, 1, 1, 7, 3], np.uint16)
    vals, durs = dedup_units(units)
    assert vals.tolist() == [3, 1, 7, 3] and durs.tolist() == [3, 2, 1, 1]
    assert np.repeat(vals, durs).tolist() == units.tolist()
    long = np.zeros(70000, np.uint16)
    vals, durs = dedup_units(long)
    assert durs.dtype == np.uint16 and int(durs.astype(np.int64).sum()) == 70000
    assert dedup_units(np.zeros(0, np.uint16))[0].size == 0


def _raw() -> dict:
    return {"vars": {"corpus": "demo", "k": 8},
            "ingest": {"source": "${corpus}", "sample_rate": 16000},
            "shards": {"cuts_per_shard": 5},
            "stages": [FBANK, {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
                               "config": {"k": "${k}", "iterations": 3}}]}


def test_recipe_sets_vars_and_dotted_fields() -> None:
    sets = parse_sets(["corpus=/data/x", "k=64", "km.seed=3", "shards.cuts_per_shard=7",
                       "ingest.kind=kaldi", "fbank.dtype=float32"])
    r = recipe_from_dict(_raw(), sets=sets)
    assert r.ingest.source == "/data/x" and r.ingest.kind == "kaldi"
    assert r.cuts_per_shard == 7
    km = r.stages[1]["config"]
    assert km["k"] == 64 and isinstance(km["k"], int) and km["seed"] == 3
    assert r.stages[0]["config"]["dtype"] == "float32"
    with pytest.raises(ConfigError, match="the recipe has no `nope`"):
        recipe_from_dict(_raw(), sets={"nope": 1})
    with pytest.raises(ConfigError, match="the recipe has no `other`"):
        recipe_from_dict(_raw(), sets={"other.k": 1})
    with pytest.raises(ConfigError, match="km has no `bogus`"):
        recipe_from_dict(_raw(), sets={"km.bogus": 1})
    with pytest.raises(SpeechtokError, match="KEY=VALUE"):
        parse_sets(["novalue"])
    bad = _raw()
    bad["stages"][1]["config"]["k"] = "${missing}"
    with pytest.raises(ConfigError, match="missing"):
        recipe_from_dict(bad)


def test_demo_recipe_parses() -> None:
    r = load_recipe(ROOT / "recipes" / "demo.yaml", sets=parse_sets(["k=20"]))
    assert r.ingest.source == "demo" and [s["type"] for s in r.stages] == ["fbank", "kmeans_units"]
    assert r.stages[1]["config"]["k"] == 20 and r.stages[1]["input"] == "feats.fbank"
    for spec in r.stages:
        build_stage(spec)  # every stage config validates


def test_fault_spec_parsing() -> None:
    os.environ["SPEECHTOK_FAULT"] = "after_tmp_write:3, after_fit"
    try:
        assert _targets() == {"after_tmp_write": 3, "after_fit": 1}
    finally:
        del os.environ["SPEECHTOK_FAULT"]


def test_lock_refuses_second_holder_and_releases(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with RunLock(path):
        info = read_lock(path)
        assert info is not None and info["pid"] == os.getpid()
        with pytest.raises(LockedError, match="another run"):
            RunLock(path).acquire()
    assert not path.exists()


def test_stale_lock_of_dead_process_is_taken_over(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    path = tmp_path / "run.lock"
    path.write_text(json.dumps({"hostname": socket.gethostname(), "pid": dead,
                                "start_time": "1"}))
    lock = RunLock(path)
    with lock:
        assert lock.took_over is not None and lock.took_over["pid"] == dead
    # A lock whose pid was recycled by another process (different start time) is stale too.
    path.write_text(json.dumps({"hostname": socket.gethostname(), "pid": os.getpid(),
                                "start_time": "-1"}))
    with RunLock(path) as lock2:
        assert lock2.took_over is not None
    # A lock from another host cannot be checked: refused, with how to remove it.
    path.write_text(json.dumps({"hostname": "elsewhere.example", "pid": 1}))
    with pytest.raises(LockedError, match="delete"):
        RunLock(path).acquire()


class _FakeCut:
    """Just what FbankStage uses of a lhotse cut."""

    def __init__(self, cut_id: str, wave: np.ndarray | None) -> None:
        self.id, self.sampling_rate, self.duration = cut_id, 16000, 0.5
        self._wave = wave

    def load_audio(self) -> np.ndarray:
        if self._wave is None:
            raise RuntimeError("cannot decode")
        return self._wave[None, :]


def test_fbank_stage_quarantines_each_kind_of_bad_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    from speechtok.features import fbank as fb
    from speechtok.pipeline.stage import CutItem, Quarantine

    good = (0.1 * np.sin(np.arange(8000) / 7.0)).astype(np.float32)
    nan = good.copy()
    nan[10] = np.nan
    items = [CutItem(cut=_FakeCut(i, w)) for i, w in
             [("ok", good), ("undecodable", None), ("nan", nan), ("empty", good[:0]),
              ("nanfeats", good * 0.5)]]
    real = fb.compute_fbank_batch

    def fake(waves: list[np.ndarray], sr: int, cfg: object = None, **kw: object) -> list:
        out = real(waves, sr, cfg, **kw)
        out[-1][3, 5] = np.nan  # the last signal's features go NaN
        return out

    from speechtok.pipeline.stages import fbank as fbank_stage

    monkeypatch.setattr(fbank_stage, "compute_fbank_batch", fake)
    stage = build_stage(FBANK)
    res = stage.process(items)
    assert isinstance(res[0], dict) and res[0]["feats"].shape == (50, 40)
    assert res[0]["feats"].dtype == np.float16
    reasons = {r.id: r.reason for r in res if isinstance(r, Quarantine)}
    assert reasons == {"undecodable": "unreadable", "nan": "nan_or_inf", "empty": "empty",
                       "nanfeats": "nan_features"}
    assert stage.empty_row("x")["feats"].shape == (0, 40)


def test_every_builtin_stage_type_resolves_in_a_fresh_process() -> None:
    """Regression: model stages were registered only when `speechtok.pipeline.stages` had been
    imported, which a Ray worker never did; now the one table imports every built-in stage by name."""
    import subprocess
    import sys

    code = ("from speechtok.pipeline.stage_types import STAGE_TYPES, stage_class\n"
            "print(sorted(t for t in STAGE_TYPES if stage_class(t)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted(["cuts", "fbank", "kmeans_units", "ssl", "whisper", "codec", "ctc_align",
                                      "unit_bpe"]))
