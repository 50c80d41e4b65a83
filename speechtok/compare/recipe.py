"""The comparison recipe: one YAML file that states every setting of a three-family comparison.

```yaml
description: ...
data:
  shards: runs/so_shards                  # shard dir with `feats` and `units` groups
  shards_recipe: recipes/token_speechocean_units.yaml   # built with `speechtok run` if missing
  feats: feats.fbank                      # latent family input
  units: units.km100                      # token family input
  frame_rate: 100.0                       # frames per second of `feats` and `units`
  kaldi_dir: "{shared}/data/speechocean762-train80"     # text family input (Whisper n-best)
  train_share: 0.7                        # speaker-disjoint split, same rule for every family
  split_seed: 0
  eval_utts: 0                            # cap on evaluated utterances (0 = all held-out)
  test: null                              # optional separate test set, scored only: a shard dir
                                          # (same feature stages; a Kaldi dir works for the cascade only)
llm: {hidden_size: 128, num_layers: 3, num_heads: 4, intermediate_size: 384, seed: 0}
budget: {steps: 300}                      # optimiser steps of each family's LLM training
backbone: scratch                         # scratch | whisper_decoder | [scratch, whisper_decoder]
families:
  text:   {enabled: true, recipe: recipes/cascade_speechocean.yaml, set: {ger.mode: full}}
  latent: {enabled: true, recipe: recipes/latent_speechocean.yaml, set: {}}
  token:  {enabled: true, recipe: recipes/token_speechocean.yaml, set: {}}
```

Relative paths resolve against the working directory; ``{shared}`` and ``{root}`` expand as
in the cascade recipe (``SPEECHTOK_SHARED`` or ``../shared``; the project directory).
Overrides (``--set llm.hidden_size=64``, ``--set families.text.set.ger.steps=5``) are dotted
keys with YAML values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from speechtok.errors import ConfigError, InputError
from speechtok.paths import expand_placeholders

FAMILIES: tuple[str, ...] = ("text", "latent", "token")
#: The LLM every family trains: a tiny Llama from scratch (sizes in `llm:`) or Whisper tiny.en's
#: pretrained decoder (`llm.kind: whisper_decoder` in each trainer).
BACKBONES: tuple[str, ...] = ("scratch", "whisper_decoder")
LLM_KEYS: tuple[str, ...] = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "seed")


@dataclass(frozen=True, kw_only=True)
class CompareData:
    """The shared corpus: shards for the latent and token families, a Kaldi dir for the cascade."""

    shards: Path
    shards_recipe: Path | None = None
    shards_sets: dict[str, Any] = field(default_factory=dict)
    feats: str = "feats.fbank"
    units: str = "units.km100"
    frame_rate: float = 100.0
    kaldi_dir: Path | None = None
    train_share: float = 0.7
    split_seed: int = 0
    eval_utts: int = 0
    test: Path | None = None

    def validate(self) -> None:
        if not 0.0 < self.train_share < 1.0:
            raise ConfigError("data.train_share", self.train_share, "must be in (0, 1)")
        if self.eval_utts < 0:
            raise ConfigError("data.eval_utts", self.eval_utts, "must be >= 0 (0 = every held-out utterance)")
        if self.frame_rate <= 0:
            raise ConfigError("data.frame_rate", self.frame_rate, "must be > 0")


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """One family: its trainer recipe and the overrides the comparison adds to it."""

    name: str
    enabled: bool = True
    recipe: Path
    sets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CompareRecipe:
    """A whole comparison; `validate()` checks every section."""

    description: str = ""
    data: CompareData
    llm: dict[str, int]
    steps: int
    families: tuple[FamilySpec, ...]
    threads: int = 1
    backbones: tuple[str, ...] = ("scratch",)

    def validate(self) -> None:
        self.data.validate()
        if not self.backbones or any(b not in BACKBONES for b in self.backbones) \
                or len(set(self.backbones)) != len(self.backbones):
            raise ConfigError("backbone", list(self.backbones), f"must be one or a list of distinct {list(BACKBONES)}")
        missing = [k for k in LLM_KEYS if k not in self.llm]
        if missing:
            raise ConfigError("llm", self.llm, f"must set {list(LLM_KEYS)}; missing {missing}")
        if self.llm["hidden_size"] % max(self.llm["num_heads"], 1):
            raise ConfigError("llm.hidden_size", self.llm["hidden_size"], "must be a multiple of llm.num_heads")
        if self.steps < 1:
            raise ConfigError("budget.steps", self.steps, "must be >= 1")
        for fam in self.families:
            if fam.enabled and not fam.recipe.is_file():
                raise ConfigError(f"families.{fam.name}.recipe", str(fam.recipe), "must be an existing recipe file")


def _set_dotted(raw: dict[str, Any], key: str, text: str) -> None:
    parts = key.split(".")
    node = raw
    # `families.text.set.ger.steps`: everything after `set.` is one key of the family's overrides
    if len(parts) > 3 and parts[0] == "families" and parts[2] == "set":
        node = raw.setdefault("families", {}).setdefault(parts[1], {}).setdefault("set", {})
        node[".".join(parts[3:])] = text
        return
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(key, text, f"cannot be set: {p!r} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(text)


def _backbones(value: Any) -> tuple[str, ...]:
    """`backbone:` as a tuple: one name or a list of names."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError("backbone", value, f"must be one or a list of {list(BACKBONES)}")


def load_compare_recipe(path: Path, overrides: dict[str, str] | None = None) -> tuple[CompareRecipe, dict[str, Any]]:
    """Parses and validates the recipe at `path` with dotted `overrides`; returns it and the raw dict."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "comparison recipe not found")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise InputError(str(path), "a comparison recipe must be a YAML mapping")
    for key, text in (overrides or {}).items():
        _set_dotted(raw, key, text)
    raw = expand_placeholders(raw)
    known = {"description", "data", "llm", "budget", "families", "threads", "backbone"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(unknown[0], raw[unknown[0]], f"is not a section of a comparison recipe; known: {sorted(known)}")
    d = dict(raw.get("data") or {})
    if "shards" not in d:
        raise ConfigError("data.shards", None, "must name the shard directory of the corpus")
    for k in ("shards", "shards_recipe", "kaldi_dir", "test"):
        if d.get(k) is not None:
            d[k] = Path(d[k])
    d["shards_sets"] = {str(k): v for k, v in (d.get("shards_sets") or {}).items()}
    try:
        data = CompareData(**d)
    except TypeError as exc:
        raise ConfigError("data", sorted(d), f"has an unknown key ({exc})") from exc
    fams = []
    for name in FAMILIES:
        f = dict((raw.get("families") or {}).get(name) or {})
        if "recipe" not in f:
            raise ConfigError(f"families.{name}.recipe", None, "must name that family's trainer recipe")
        # values go to the family's own `--set` parser as YAML text (JSON is YAML)
        sets = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in (f.get("set") or {}).items()}
        fams.append(FamilySpec(name=name, enabled=bool(f.get("enabled", True)), recipe=Path(f["recipe"]), sets=sets))
    recipe = CompareRecipe(
        description=str(raw.get("description", "")),
        data=data,
        llm={k: int(v) for k, v in (raw.get("llm") or {}).items()},
        steps=int((raw.get("budget") or {}).get("steps", 0)),
        families=tuple(fams),
        threads=int(raw.get("threads", 1)),
        backbones=_backbones(raw.get("backbone", "scratch")),
    )
    recipe.validate()
    return recipe, raw
