"""`run_family` drives every family through the `Family` protocol of the `FAMILIES` registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from speechtok.compare import families
from speechtok.compare.recipe import FAMILIES as RECIPE_FAMILIES
from speechtok.compare.recipe import CompareRecipe, FamilySpec, load_compare_recipe
from speechtok.compare.split_proof import HeldOut
from speechtok.paths import ROOT


class _Fake:
    """A family that records the protocol calls and returns `code` from its trainer."""

    name = "latent"
    whisper_decoder_sets = {"llm.kind": "fake_decoder"}
    after_scratch = False
    backbones = ("scratch", "whisper_decoder")

    def __init__(self, code: int) -> None:
        self.code, self.calls = code, []  # type: ignore[var-annotated]

    def overrides(self, recipe: CompareRecipe) -> dict[str, Any]:
        self.calls.append("overrides")
        return {"train.max_steps": recipe.steps, "from": "overrides"}

    def prepare(self, out_dir: Path, run_dir: Path, backbone: str, sets: dict[str, Any]) -> None:
        self.calls.append(f"prepare {backbone} {run_dir.name}")
        sets["prepared"] = True

    def run(self, recipe_path: Path, run_dir: Path, sets: dict[str, Any]) -> int:
        self.calls.append(f"run {sorted(sets)}")
        return self.code

    def read(self, run_dir: Path, recipe: CompareRecipe, wall_s: float) -> dict[str, Any]:
        self.calls.append("read")
        return {"wer": 0.5}

    def prove_split(self, run_dir: Path, held: HeldOut) -> dict[str, Any]:
        self.calls.append("prove_split")
        return {"test_wer": 0.25}


def test_registry_names_every_recipe_family_in_order() -> None:
    assert tuple(families.FAMILIES) == RECIPE_FAMILIES
    for name, fam in families.FAMILIES.items():
        assert fam.name == name
        assert families.backbone_overrides(name, "whisper_decoder") == dict(fam.whisper_decoder_sets)
    assert [n for n, f in families.FAMILIES.items() if f.after_scratch] == ["text"]
    assert [n for n, f in families.FAMILIES.items() if "scratch" not in f.backbones] == ["latent_memory"]


def test_memory_variant_is_the_latent_family_into_cross_attention_and_skipped_under_scratch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechtok.compare import run_families

    recipe, _ = load_compare_recipe(ROOT / "recipes/compare_demo.yaml", {"data.shards": str(tmp_path),
                                                                         "backbone": ["scratch", "whisper_decoder"]})
    sets = families.FAMILIES["latent_memory"].overrides(recipe)
    assert sets == {**families.FAMILIES["latent"].overrides(recipe), "latent.speech_into": "memory"}
    ran: list[tuple[str, str]] = []

    def fake_run(fam: FamilySpec, recipe: CompareRecipe, out_dir: Path, held: Any, backbone: str) -> dict[str, Any]:
        ran.append((fam.name, backbone))
        return {"family": fam.name, "backbone": backbone, "status": "ok"}

    monkeypatch.setattr("speechtok.compare.run_family", fake_run)
    spec = FamilySpec(name="latent_memory", enabled=True, recipe=tmp_path / "r.yaml")
    recipe = dataclasses.replace(recipe, families=(*recipe.families, spec))
    records = run_families(recipe, tmp_path, HeldOut(speaker_of={}, part_of={}, rule="none"))
    assert ("latent_memory", "scratch") not in ran and ("latent_memory", "whisper_decoder") in ran
    skipped = [r for r in records if r["status"] == "skipped"]
    assert [(r["family"], r["backbone"]) for r in skipped] == [("latent_memory", "scratch")]
    assert "whisper_decoder only" in skipped[0]["reason"]
    assert len(records) == 2 * len(recipe.families)


@pytest.mark.parametrize("code", [0, 3])
def test_run_family_calls_the_protocol_in_order(code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe, _ = load_compare_recipe(ROOT / "recipes/compare_demo.yaml", {"data.shards": str(tmp_path)})
    fake = _Fake(code)
    monkeypatch.setitem(families.FAMILIES, "latent", fake)
    spec = FamilySpec(name="latent", enabled=True, recipe=tmp_path / "r.yaml", sets={"own": 1})
    held = HeldOut(speaker_of={}, part_of={}, rule="none")
    rec = families.run_family(spec, recipe, tmp_path, held, backbone="whisper_decoder")
    sets = ["from", "llm.kind", "own", "prepared", "train.max_steps"]
    assert fake.calls[:3] == ["overrides", "prepare whisper_decoder latent.whisper_decoder", f"run {sets}"]
    assert rec["overrides"]["llm.kind"] == "fake_decoder" and rec["overrides"]["own"] == 1
    if code == 0:
        assert fake.calls[3:] == ["read", "prove_split"]
        assert rec["status"] == "ok" and rec["wer"] == 0.5 and rec["test_wer"] == 0.25
    else:
        assert fake.calls[3:] == []
        assert rec["status"] == "failed" and "exit code 3" in rec["error"]
