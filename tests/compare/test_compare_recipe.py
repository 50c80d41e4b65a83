"""`load_compare_recipe`: a family name or family key the comparison does not know is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speechtok.compare.recipe import load_compare_recipe
from speechtok.errors import ConfigError
from speechtok.paths import ROOT


def _recipe(tmp_path: Path, edit: object) -> Path:
    raw = yaml.safe_load((ROOT / "recipes" / "compare_demo.yaml").read_text())
    edit(raw["families"])  # type: ignore[operator]
    p = tmp_path / "compare.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize(("edit", "key"), [
    (lambda f: f.update(tokn={"recipe": "recipes/token_tiny.yaml"}), "`families.tokn`"),
    (lambda f: f["token"].update(enabeld=False), "`families.token.enabeld`"),
    (lambda f: f.update(token=["recipes/token_tiny.yaml"]), "`families.token`"),
])
def test_unknown_family_or_family_key_is_refused(tmp_path: Path, edit: object, key: str) -> None:
    # an unknown family or a misspelt `enabled` used to be ignored: the family ran anyway
    with pytest.raises(ConfigError) as err:
        load_compare_recipe(_recipe(tmp_path, edit), {"data.shards": "/tmp/x"})
    assert str(err.value).startswith(key)


def test_families_not_a_mapping_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "compare.yaml"
    raw = yaml.safe_load((ROOT / "recipes" / "compare_demo.yaml").read_text())
    raw["families"] = ["text", "token"]
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="`families` must be a mapping"):
        load_compare_recipe(p, {"data.shards": "/tmp/x"})


def test_a_disabled_family_still_loads(tmp_path: Path) -> None:
    r, _ = load_compare_recipe(_recipe(tmp_path, lambda f: f["token"].update(enabled=False)),
                               {"data.shards": "/tmp/x"})
    assert [f.enabled for f in r.families if f.name == "token"] == [False]
