"""Fit once, use everywhere, for unit BPE: a ``unit_bpe`` model fitted in run A applied to the
units of run B (``model: PATH``), its checksum in the group and in `inspect`; corpora read
together must share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.manifests.tone_corpus import write_tone_corpus
from speechtok.pipeline.executors.local import LocalPoolExecutor
from speechtok.pipeline.recipe import Recipe, recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.shards.inspect import format_summary, inspect_output
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.units import UnitBPE
from speechtok.trainers.token.dataset import load_utterances
from speechtok.trainers.token.recipe import TokenDataConfig

QUIET = RunOptions(progress=False)


def bpe_recipe(corpus: Path, km: dict[str, Any] | None = None,
               bpe: dict[str, Any] | None = None) -> Recipe:
    """ingest -> fbank (40) -> k-means (k=4) -> unit BPE (vocab 12), 3 cuts per shard."""
    return recipe_from_dict({
        "ingest": {"source": str(corpus), "sample_rate": 16000,
                   "options": {"speaker_from": "top_dir"}},
        "shards": {"cuts_per_shard": 3},
        "stages": [
            {"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
            {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
             "config": {"k": 4, "iterations": 4, "frame_budget": 3000, **(km or {})}},
            {"type": "unit_bpe", "name": "bpe", "input": "units.km",
             "config": {"vocab_size": 12, **(bpe or {})}},
        ]})


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpora")
    return (write_tone_corpus(root / "a", 8, speakers=2),  # speakers: the token data needs them
            write_tone_corpus(root / "b", 6, seed=1, stem="b", speakers=2))


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory, corpora: tuple[Path, Path],
          pool: LocalPoolExecutor) -> Path:
    out = tmp_path_factory.mktemp("a") / "out"
    run(bpe_recipe(corpora[0]), out, QUIET, executor=pool)
    return out


def _rows(out: Path, group: str) -> dict[str, list[int]]:
    ds = ShardDataset(out, groups=("cuts", group))
    return {str(r["id"]): np.asarray(r[group]).tolist() for r in ds}


def test_bpe_fitted_in_run_a_applied_to_another_corpus_without_refitting(
        tmp_path: Path, corpora: tuple[Path, Path], run_a: Path, pool: LocalPoolExecutor) -> None:
    bpe = UnitBPE.load(run_a / "models" / "bpe")
    assert bpe.k == 4 and bpe.units_source is not None
    meta_km = ShardDataset(run_a, groups=("units.km",)).meta("units.km")
    assert bpe.units_source["model_checksum"] == meta_km.model_checksum
    a_units, a_ids = _rows(run_a, "units.km"), _rows(run_a, "units.bpe")
    assert a_ids.keys() == a_units.keys() and len(a_ids) == 8
    for cid, units in a_units.items():  # BPE ids decode back to the cut's units
        assert bpe.decode(np.asarray(a_ids[cid])).tolist() == units
    assert sum(map(len, a_ids.values())) < sum(map(len, a_units.values()))  # merges were learnt

    # run B: another corpus, A's k-means and A's BPE applied (vocab_size differs on purpose:
    # an applied model's vocabulary wins)
    out_b = tmp_path / "b"
    run(bpe_recipe(corpora[1], km={"model": str(run_a / "models" / "km")},
                   bpe={"model": str(run_a / "models" / "bpe"), "vocab_size": 30}),
        out_b, QUIET, executor=pool)
    b_units, b_ids = _rows(out_b, "units.km"), _rows(out_b, "units.bpe")
    assert len(b_ids) == 6
    assert {c: bpe.encode(np.asarray(u, np.uint16)).tolist() for c, u in b_units.items()} == b_ids
    meta_a = ShardDataset(run_a, groups=("units.bpe",)).meta("units.bpe")
    meta_b = ShardDataset(out_b, groups=("units.bpe",)).meta("units.bpe")
    assert meta_a.model_checksum == meta_b.model_checksum == bpe.checksum()
    assert meta_a.vocab_size == meta_b.vocab_size == bpe.vocab_size
    assert UnitBPE.load(out_b / "models" / "bpe").checksum() == bpe.checksum()  # copied as is
    for out in (run_a, out_b):  # inspect names the same BPE for both corpora
        assert f"model_checksum {bpe.checksum()}" in format_summary(inspect_output(out))

    # the two corpora read together as one token dataset: one vocabulary (same BPE checksum)
    utts, vocab = load_utterances(TokenDataConfig(shards=str(run_a), units="units.bpe",
                                                  more_shards=(str(out_b),)))
    assert vocab == bpe.vocab_size and len(utts) == 14


def test_bpe_applied_to_units_of_another_kmeans_model_is_refused_naming_both_checksums(
        tmp_path: Path, corpora: tuple[Path, Path], run_a: Path, pool: LocalPoolExecutor) -> None:
    bpe = UnitBPE.load(run_a / "models" / "bpe")
    want = bpe.units_source["model_checksum"] if bpe.units_source else None
    # B fits its own k-means (other cuts, other centroids), then applies A's BPE
    with pytest.raises(ConfigError, match=r"units\.km\.model_checksum") as exc:
        run(bpe_recipe(corpora[1], bpe={"model": str(run_a / "models" / "bpe")}),
            tmp_path / "c", QUIET, executor=pool)
    got = ShardDataset(tmp_path / "c", groups=("units.km",)).meta("units.km").model_checksum
    assert want and got and want != got
    assert want in str(exc.value) and got in str(exc.value)
    with pytest.raises(ConfigError, match=r"units\.km\.vocab_size.*must equal k=4"):
        run(bpe_recipe(corpora[1], km={"k": 5}, bpe={"model": str(run_a / "models" / "bpe")}),
            tmp_path / "d", QUIET, executor=pool)


def test_corpora_with_different_bpes_are_not_read_together(
        tmp_path: Path, corpora: tuple[Path, Path], run_a: Path, pool: LocalPoolExecutor) -> None:
    out_e = tmp_path / "e"  # A's k-means, but a BPE of its own (fitted on corpus b)
    run(bpe_recipe(corpora[1], km={"model": str(run_a / "models" / "km")}, bpe={"vocab_size": 9}),
        out_e, QUIET, executor=pool)
    mine = ShardDataset(run_a, groups=("units.bpe",)).meta("units.bpe").model_checksum
    theirs = ShardDataset(out_e, groups=("units.bpe",)).meta("units.bpe").model_checksum
    assert mine and theirs and mine != theirs
    with pytest.raises(ConfigError, match=r"units\.bpe\.model_checksum.*unit BPE") as exc:
        load_utterances(TokenDataConfig(shards=str(run_a), units="units.bpe",
                                        more_shards=(str(out_e),)))
    assert mine in str(exc.value) and theirs in str(exc.value)


def test_bad_model_paths_and_inputs_are_refused(tmp_path: Path, run_a: Path) -> None:
    from speechtok.pipeline.stage_types import build_stage

    with pytest.raises(InputError, match=r"no unit BPE model.*has \[.*models/bpe"):
        UnitBPE.load(run_a)  # the run, not its model directory: the error lists the models
    with pytest.raises(ConfigError, match=r"bpe\.input.*units group"):
        build_stage({"type": "unit_bpe", "name": "bpe", "input": "feats.fbank", "config": {}})
    with pytest.raises(ConfigError, match=r"vocab_size.*must be in \[3, 65536\]"):
        build_stage({"type": "unit_bpe", "name": "bpe", "input": "units.km",
                     "config": {"vocab_size": 70000}})
    import shutil

    damaged = tmp_path / "bpe"
    shutil.copytree(run_a / "models" / "bpe", damaged)
    (damaged / "unit_bpe.model").write_bytes((damaged / "unit_bpe.model").read_bytes()[:-1] + b"x")
    with pytest.raises(InputError, match="checksum"):
        UnitBPE.load(damaged)
