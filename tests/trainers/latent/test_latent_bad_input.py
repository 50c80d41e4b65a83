"""Bad latent-recipe input is a `ConfigError` naming the value, never a traceback from inside the trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def _shards_with_empty_rows(out: Path) -> list[str]:
    """8 cuts over 4 speakers whose rows 0 and 5 have 0 feature frames (not quarantined)."""
    from speechtok.shards.schema import GroupMeta
    from speechtok.shards.writer import commit_group_shard
    from speechtok.trainers.token.synthetic import CUTS

    feats = GroupMeta(group="feats.syn", kind="feats", stage="fbank", stage_version="1", config={},
                      fingerprint="syn-feats", frame_rate=50.0, dim=4, dtype="float32")
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(8)]
    cuts = [{"id": c, "recording_id": c, "start": 0.0, "duration": 0.2, "sampling_rate": 16000,
             "text": "CAT DOG", "speaker": f"spk{i % 4}", "language": "en"} for i, c in enumerate(ids)]
    rows = [{"id": c, "feats": rng.normal(size=(0 if i in (0, 5) else 10, 4)).astype(np.float32)}
            for i, c in enumerate(ids)]
    commit_group_shard(out, 0, CUTS, cuts)
    commit_group_shard(out, 0, feats, rows)
    return [ids[0], ids[5]]


def test_rows_with_zero_frames_are_left_out_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # they used to reach stage 1 and stop the run with "RuntimeError: log_probs tensor must not be empty"
    from speechtok.trainers.latent.decode import shard_rows
    from speechtok.trainers.latent.train import LatentDataConfig, _split
    from speechtok.trainers.token.recipe import SplitConfig

    empty = _shards_with_empty_rows(tmp_path / "s")
    cfg = LatentDataConfig(shards=str(tmp_path / "s"), feats="feats.syn")
    train, dev, _ = _split(cfg, SplitConfig(train=0.5, seed=0))
    used = {train.ds[i]["id"] for i in train.indices} | {dev.ds[i]["id"] for i in dev.indices}
    assert len(used) == 6 and not used & set(empty)
    out = capsys.readouterr().out
    assert "6 rows used" in out and "2 with 0 input frames" in out
    rows = shard_rows(tmp_path / "s", "feats.syn")
    assert [r.id for r in rows] == [f"c{i}" for i in (1, 2, 3, 4, 6, 7)]
    assert "left out 2 rows with 0 frames of feats.syn" in capsys.readouterr().out
