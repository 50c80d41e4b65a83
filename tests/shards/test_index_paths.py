"""Index entries cannot lead out of OUT (issue 14): crafted ``../`` and absolute paths, symlink
escapes, bad group names. `verify` names each bad entry, the reader refuses it, and deleting a
group never touches a file outside the output directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.shards.index import ShardIndex, remove_entries, rewrite_index
from speechtok.shards.names import check_stage_name, is_group_name
from speechtok.shards.reader import ShardDataset
from speechtok.shards.testing import write_dummy_output
from speechtok.shards.verify import verify_output


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.arrow"
    victim.write_bytes(b"precious, outside the output")
    return victim


def _craft(out: Path, victim: Path) -> None:
    """Points units shard 0 (entry file) at ``../victim.arrow`` and units shard 1 (in
    index.json) at the victim's absolute path."""
    rewrite_index(out)
    e0 = out / "index.d" / "units.km50.00000.json"
    entry = json.loads(e0.read_text())
    entry["path"] = "../victim.arrow"
    e0.write_text(json.dumps(entry))
    (out / "index.d" / "units.km50.00001.json").unlink()
    data = json.loads((out / "index.json").read_text())
    for e in data["shards"]:
        if e["group"] == "units.km50" and e["shard"] == 1:
            e["path"] = str(victim)
    (out / "index.json").write_text(json.dumps(data))


def test_crafted_index_paths_are_named_by_verify_and_touch_nothing_outside(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dummy_output(out)
    victim = _victim(tmp_path)
    _craft(out, victim)
    rep = verify_output(out)
    assert not rep.ok
    text = "\n".join(f"{p}: {r}" for p, r in rep.problems)
    assert "'../victim.arrow'" in text and repr(str(victim)) in text
    assert "units.km50.00000.json" in text and "index.json" in text
    with pytest.raises(InputError, match=r"must be 'shards/0000[01]\.units\.km50\.arrow'"):
        ShardIndex.load(out)
    with pytest.raises(InputError, match="victim"):
        ShardDataset(out, groups=("units.km50",))
    with pytest.raises(InputError):
        remove_entries(out, "units.km50")
    assert victim.read_bytes() == b"precious, outside the output"


def test_symlink_out_of_the_output_is_refused_and_never_followed_for_deletion(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dummy_output(out)
    victim = _victim(tmp_path)
    shard = out / "shards" / "00000.units.km50.arrow"
    shard.unlink()
    shard.symlink_to(victim)
    rep = verify_output(out)
    assert any("outside the output directory" in r and "00000.units.km50" in p
               for p, r in rep.problems)
    assert ShardIndex.load(out).committed("units.km50", 0) is None
    remove_entries(out, "units.km50")  # removes the link, not its target
    assert not shard.is_symlink() and victim.read_bytes() == b"precious, outside the output"
    # A whole shards/ directory that is a symlink out of OUT: nothing deleted through it.
    out2 = tmp_path / "out2"
    write_dummy_output(out2)
    elsewhere = tmp_path / "elsewhere"
    (out2 / "shards").rename(elsewhere)
    (out2 / "shards").symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    with pytest.raises(InputError, match="outside"):
        remove_entries(out2, "units.km50")
    assert sorted(p.name for p in elsewhere.iterdir()) == before
    assert not verify_output(out2).ok


def test_stage_and_group_names_share_one_rule() -> None:
    for good in ("fbank", "km100", "whisper_tiny", "a-b", "X1"):
        assert check_stage_name(good) == good and is_group_name(f"feats.{good}")
    for bad in ("", "..", "../x", "a/b", "-x", "_x", "a b", "x" * 65, ".hidden"):
        with pytest.raises(ConfigError):
            check_stage_name(bad)
        assert not is_group_name(f"feats.{bad}")
    assert is_group_name("cuts") and not is_group_name("Feats.x") and not is_group_name("feats")


def test_recipe_refuses_a_stage_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    from speechtok.pipeline.recipe import recipe_from_dict

    raw = {"ingest": {"source": str(tmp_path)}, "stages": [
        {"type": "fbank", "name": "../../etc", "config": {}}]}
    with pytest.raises(ConfigError, match="stages.name"):
        recipe_from_dict(raw)
