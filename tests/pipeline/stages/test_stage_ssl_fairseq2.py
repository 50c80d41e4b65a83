"""The ``ssl`` stage with ``backend: fairseq2``, run by the runner on a tiny corpus: rows equal the
library's, agree with the transformers backend on the same weights, a rerun skips every shard,
and the backend and the model checksum are in the fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fairseq2_tiny import tiny_wav2vec2_pair
from test_runner_util import make_corpus

from speechtok.config import fingerprint_of, to_json
from speechtok.errors import ConfigError
from speechtok.features.ssl import SSLConfig, SSLFeatureExtractor
from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.pipeline.stage_types import build_stage
from speechtok.shards.reader import ShardDataset

pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

INLINE = RunOptions(executor="inline", progress=False)
N_CUTS = 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_wav2vec2_pair(tmp_path_factory.mktemp("w2v2"), group_norm=False)


def _stages(pair: tuple[Path, Path]) -> list[dict[str, Any]]:
    hf, fs2 = pair
    return [{"type": "ssl", "name": "fs2", "config": {"model": str(fs2), "backend": "fairseq2", "layers": [2]}},
            {"type": "ssl", "name": "hf", "config": {"model": str(hf), "layers": [2]}}]


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory, pair: tuple[Path, Path]) -> tuple[Path, Any]:
    corpus = make_corpus(tmp_path_factory.mktemp("corpus"), n=N_CUTS)
    recipe = recipe_from_dict({"ingest": {"source": str(corpus), "sample_rate": 16000},
                               "shards": {"cuts_per_shard": 2}, "stages": _stages(pair)})
    out = tmp_path_factory.mktemp("run") / "out"
    run(recipe, out, INLINE)
    return out, recipe


def test_rows_equal_library_and_agree_with_transformers(output: tuple[Path, Any], pair: tuple[Path, Path]) -> None:
    from lhotse import CutSet

    out, _ = output
    ds = ShardDataset(out, groups=("cuts", "feats.fs2", "feats.hf"))
    meta = ds.meta("feats.fs2")
    lib = SSLFeatureExtractor(SSLConfig(model=str(pair[1]), backend="fairseq2", layers=(2,)))
    assert (meta.kind, meta.stage, meta.frame_rate, meta.dim, meta.dtype) == ("feats", "ssl", 50.0, 32, "float16")
    assert meta.model_checksum == lib.model_checksum() != ds.meta("feats.hf").model_checksum
    cuts = list(CutSet.from_file(out / "ingest" / "cuts.jsonl.gz"))
    for i in range(N_CUTS):
        row = ds[i]
        assert row["id"] == cuts[i].id
        fs2, hf = row["feats.fs2"], row["feats.hf"]
        assert fs2.dtype == np.float16 and fs2.shape == hf.shape and fs2.shape[1] == 32
        # float16 rows: the stage batched the cut with its shard neighbours (padded, masked), the
        # library ran it alone; float32 results differ by ~1e-6, so by at most one float16 step here
        alone = lib.extract(cuts[i].load_audio()[0])[2].astype(np.float32)
        np.testing.assert_allclose(fs2.astype(np.float32), alone, rtol=2e-3, atol=1e-4)
        np.testing.assert_allclose(fs2.astype(np.float32), hf.astype(np.float32), rtol=2e-3, atol=1e-4)


def test_rerun_skips_every_shard(output: tuple[Path, Any]) -> None:
    out, recipe = output
    stages = {s["stage"]: s for s in run(recipe, out, INLINE).to_json()["stages"]}
    for name in ("fs2", "hf"):
        assert stages[name]["shards_skipped"] == stages[name]["shards_total"] == 2, stages[name]


def test_backend_and_checksum_in_the_fingerprint(pair: tuple[Path, Path]) -> None:
    hf_spec, fs2_spec = _stages(pair)[1], _stages(pair)[0]
    fs2 = build_stage(fs2_spec)
    same_but_transformers = build_stage({**fs2_spec, "config": {**fs2_spec["config"], "backend": "transformers"}})
    for stage in (fs2, same_but_transformers):  # the same checksum: only the backend differs
        stage._facts = {"frame_rate": 50.0, "dim": 32, "dtype": "float16", "model_checksum": "sha256:x"}
    assert fs2.fingerprint(None) != same_but_transformers.fingerprint(None)
    assert fs2.fingerprint(None) != build_stage(fs2_spec).fingerprint(None)  # the real checksum enters it
    # A transformers stage's fingerprint is what it was before the option existed (no "backend").
    hf = build_stage(hf_spec)
    legacy = {k: v for k, v in to_json(hf.config).items() if k != "backend"}
    assert hf.fingerprint(None) == fingerprint_of({
        "upstream": None, "stage": "ssl", "name": "hf", "version": hf.version, "config": legacy,
        "input": None, "model": hf.model_checksum()})


def test_unknown_backend_is_a_config_error(pair: tuple[Path, Path]) -> None:
    spec = _stages(pair)[0]
    with pytest.raises(ConfigError, match="backend"):
        build_stage({**spec, "config": {**spec["config"], "backend": "onnx"}}).model()
