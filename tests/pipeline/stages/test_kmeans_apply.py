"""Fit once, use everywhere: a k-means model fitted in run A (the `reference` fixture of
``tests/pipeline/conftest.py``) applied by run B (``model: PATH``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_runner_util import QUIET, small_recipe

from speechtok.errors import ConfigError, InputError
from speechtok.pipeline.executors.local import LocalPoolExecutor
from speechtok.pipeline.runner import run
from speechtok.shards.inspect import format_summary, inspect_output
from speechtok.shards.reader import ShardDataset
from speechtok.tokenizers.feature_spec import FeatureSpec
from speechtok.tokenizers.kmeans import KMeansModel
from speechtok.tokenizers.kmeans_import import import_npy_centroids, load_kmeans


def _units(out: Path) -> dict[str, list[int]]:
    ds = ShardDataset(out, groups=("cuts", "units.km"))
    return {str(r["id"]): np.asarray(r["units.km"]).tolist() for r in ds}


def test_model_fitted_in_run_a_applied_in_run_b_gives_run_a_units(
        tmp_path: Path, corpus: Path, reference: Path, pool: LocalPoolExecutor) -> None:
    model_dir = reference / "models" / "km"
    saved = KMeansModel.load(model_dir)
    assert saved.feature_spec is not None
    assert saved.feature_spec["feature_type"] == "fbank" and saved.feature_spec["dim"] == 40
    assert saved.feature_spec["frame_rate"] == pytest.approx(100.0)
    out_b = tmp_path / "b"
    # k differs on purpose: an applied model's k wins (the fit options are unused)
    run(small_recipe(corpus, **{"km.model": str(model_dir), "k": 7}), out_b, QUIET, executor=pool)
    a, b = _units(reference), _units(out_b)
    assert a.keys() == b.keys() and len(a) == 10
    assert a == b
    meta_a = ShardDataset(reference, groups=("units.km",)).meta("units.km")
    meta_b = ShardDataset(out_b, groups=("units.km",)).meta("units.km")
    assert meta_b.model_checksum == meta_a.model_checksum == saved.checksum()
    assert meta_b.vocab_size == 4
    assert KMeansModel.load(out_b / "models" / "km").checksum() == saved.checksum()
    # inspect says so: both outputs name the same model checksum
    text_a, text_b = (format_summary(inspect_output(o)) for o in (reference, out_b))
    assert f"model_checksum {saved.checksum()}" in text_a
    assert f"model_checksum {saved.checksum()}" in text_b
    # a rerun reuses the copied model (nothing refit, nothing rewritten)
    rep = run(small_recipe(corpus, **{"km.model": str(model_dir), "k": 7}), out_b, QUIET, executor=pool)
    assert all(s.shards_skipped == s.shards_total for s in rep.stages)


def test_feature_config_mismatch_is_refused_naming_the_field(
        tmp_path: Path, corpus: Path, reference: Path, pool: LocalPoolExecutor) -> None:
    model_dir = str(reference / "models" / "km")
    with pytest.raises(ConfigError, match=r"feats\.fbank\.dim.*must equal 40") as e1:
        run(small_recipe(corpus, **{"km.model": model_dir, "fbank.num_mel_bins": 30}),
            tmp_path / "c", QUIET, executor=pool)
    assert e1.value.field == "feats.fbank.dim" and e1.value.value == 30
    with pytest.raises(ConfigError, match=r"frame_rate") as e2:
        run(small_recipe(corpus, **{"km.model": model_dir, "fbank.frame_shift": 0.02}),
            tmp_path / "d", QUIET, executor=pool)
    assert e2.value.field == "feats.fbank.frame_rate"
    with pytest.raises(InputError, match=r"this run output has .*models/km"):  # the run dir, not its model
        run(small_recipe(corpus, **{"km.model": str(reference)}), tmp_path / "f", QUIET, executor=pool)
    with pytest.raises(ConfigError, match=r"sample_rate"):
        run(small_recipe(corpus, **{"km.model": model_dir, "fbank.sampling_rate": 8000}),
            tmp_path / "e", QUIET, executor=pool)


def test_npy_centroids_import_with_explicit_features(
        tmp_path: Path, corpus: Path, reference: Path, pool: LocalPoolExecutor) -> None:
    saved = KMeansModel.load(reference / "models" / "km")
    npy = tmp_path / "km4.npy"
    np.save(npy, saved.centroids)  # what a converted fairseq model looks like: (K, D) float32
    feats = {"feature_type": "fbank", "dim": 40, "frame_rate": 100.0, "sample_rate": 16000}
    out = tmp_path / "npy"
    run(small_recipe(corpus, **{"km.model": str(npy), "km.features": feats}), out, QUIET, executor=pool)
    assert _units(out) == _units(reference)
    with pytest.raises(ConfigError, match="must be given for .npy"):
        load_kmeans(npy)
    with pytest.raises(ConfigError, match=r"features\.dim"):
        import_npy_centroids(npy, FeatureSpec(feature_type="fbank", dim=39))
    with pytest.raises(ConfigError, match=r"feats\.fbank\.feature_type"):
        run(small_recipe(corpus, **{"km.model": str(npy), "km.features": {**feats, "feature_type": "ssl"}}),
            tmp_path / "npy2", QUIET, executor=pool)
    bad = tmp_path / "pickled.npy"
    np.save(bad, np.array([{"cluster_centers_": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="without a pickle"):
        import_npy_centroids(bad, FeatureSpec(feature_type="fbank", dim=40))


def test_features_without_model_is_a_config_error(corpus: Path) -> None:
    from speechtok.pipeline.stage_types import build_stage

    with pytest.raises(ConfigError, match="only with `model`"):
        build_stage({"type": "kmeans_units", "name": "km", "input": "feats.fbank",
                     "config": {"k": 4, "features": {"feature_type": "fbank", "dim": 40}}})
