"""Bad latent-recipe input is a `ConfigError` naming the value, never a traceback from inside the trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechtok.errors import ConfigError
from speechtok.paths import ROOT
from speechtok.trainers.latent import run_recipe


@pytest.mark.parametrize("group", ["units.km32", "cuts", "codes.q4", "feats"])
def test_feats_must_be_a_float_group(tmp_path: Path, group: str) -> None:
    # a units group used to reach the encoder and die there with "IndexError: tuple index out of range"
    with pytest.raises(ConfigError, match="data.feats") as err:
        run_recipe(ROOT / "recipes" / "latent_tiny.yaml", tmp_path / "run",
                   {"data.shards": str(tmp_path / "shards"), "data.feats": group})
    assert repr(group) in str(err.value)
