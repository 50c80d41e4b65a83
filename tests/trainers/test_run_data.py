"""`check_test_set`: a trainer's ``data.test`` is checked before training, an empty one refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechtok.errors import InputError
from speechtok.paths import ROOT
from speechtok.shards.reader import ShardDataset
from speechtok.shards.writer import commit_group_shard
from speechtok.trainers.latent import run_recipe as run_latent
from speechtok.trainers.run_data import check_test_set
from speechtok.trainers.token import run_recipe as run_token
from speechtok.trainers.token.synthetic import write_synthetic_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a small synthetic corpus with units.km32 and feats.syn, the same groups with 0 rows)."""
    full = write_synthetic_shards(tmp_path_factory.mktemp("full"), num_cuts=12, feats_dim=4)
    empty = tmp_path_factory.mktemp("empty")
    ds = ShardDataset(full, ("cuts", "units.km32", "feats.syn"))
    for f in ds.open_shard(0).values():
        commit_group_shard(empty, 0, f.meta, [])
    ds.close()
    return full, empty


def test_check_test_set(shards: tuple[Path, Path], tmp_path: Path) -> None:
    full, empty = shards
    check_test_set(full, ["units.km32"], trained_on=full)
    with pytest.raises(InputError, match="data.test has no row to score") as err:
        check_test_set(empty, ["units.km32"], trained_on=full)
    assert err.value.item == str(empty)
    with pytest.raises(InputError, match="not a shard directory"):
        check_test_set(tmp_path / "nope", ["units.km32"], trained_on=full)


@pytest.mark.parametrize("family", ["token", "latent"])
def test_empty_test_set_is_refused_before_training(shards: tuple[Path, Path], tmp_path: Path, family: str) -> None:
    # token: the error came after training; latent: a run "succeeded" with test.wer None
    full, empty = shards
    run, recipe = (run_token, "token_tiny.yaml") if family == "token" else (run_latent, "latent_tiny.yaml")
    with pytest.raises(InputError, match="data.test has no row to score"):
        run(ROOT / "recipes" / recipe, tmp_path / "run", {"data.shards": str(full), "data.test": str(empty)})
    assert not list((tmp_path / "run").rglob("checkpoints"))  # nothing trained
