"""The comparison recipe: one YAML file that states every setting of a three-family comparison.

```yaml
description: ...
data:
  shards: runs/so_shards                  # shard dir with `feats` and `units` groups
  shards_recipe: recipes/token_speechocean_units.yaml   # built with `speechtok run` if missing
  feats: feats.fbank                      # latent family input
  units: units.km100                      # token family input
  frame_rate: 100.0                       # frames per second of `feats` and `units`
  kaldi_dir: "${shared}/data/speechocean762-train80"     # text family input (Whisper n-best)
  train_share: 0.7                        # speaker-disjoint split, same rule for every family
  split_seed: 0
  eval_utts: 0                            # cap on evaluated utterances (0 = all held-out)
  test: null                              # optional separate test set, scored only: a shard dir
                                          # (same feature stages; a Kaldi dir works for the cascade only)
llm: {hidden_size: 128, num_layers: 3, num_heads: 4, intermediate_size: 384, seed: 0}
budget: {steps: 300}                      # optimiser steps of each family's LLM training
backbone: scratch                         # scratch | whisper_decoder | [scratch, whisper_decoder]
threads: 1                                # torch threads of each family run
workers: 1                                # family runs at once (spawned processes; same results)
families:
  text:   {enabled: true, recipe: recipes/cascade_speechocean.yaml, set: {ger.llm.mode: full}}
  latent: {enabled: true, recipe: recipes/latent_speechocean.yaml, set: {}}
  latent_memory: {recipe: recipes/latent_whisper.yaml, set: {encoder.kind: identity}}   # optional; see below
  token:  {enabled: true, recipe: recipes/token_speechocean.yaml, set: {}}
```

``latent_memory`` is the latent family's second variant: the adapter's outputs are the
cross-attention memory of Whisper's decoder (``latent.speech_into: memory``) instead of a prefix of
its input sequence; it runs with backbone whisper_decoder only (a Llama has no cross-attention) and
is recorded as skipped under scratch. A recipe without a ``latent_memory`` section does not run it.

Relative paths resolve against the working directory; ``${shared}`` and ``${root}`` expand as
in every recipe (``SPEECHTOK_SHARED`` or ``../shared``; the project directory).
Overrides (``--set llm.hidden_size=64``, ``--set families.text.set.ger.train.max_steps=5``) go through
`speechtok.config` like every command's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechtok.config import LEAF, OPAQUE, build, load_recipe_dict, typed, unknown_setting
from speechtok.errors import ConfigError

FAMILIES: tuple[str, ...] = ("text", "latent", "latent_memory", "token")
#: Families a recipe may leave out (then disabled): the latent family's cross-attention variant.
OPTIONAL_FAMILIES: tuple[str, ...] = ("latent_memory",)
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
    sets: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CompareRecipe:
    """A whole comparison; `validate()` checks every section."""

    description: str = ""
    data: CompareData
    llm: dict[str, int]
    steps: int
    families: tuple[FamilySpec, ...]
    threads: int = 1
    workers: int = 1
    backbones: tuple[str, ...] = ("scratch",)

    def validate(self) -> None:
        self.data.validate()
        if self.threads < 1:
            raise ConfigError("threads", self.threads, "must be >= 1")
        if self.workers < 1:
            raise ConfigError("workers", self.workers, "must be >= 1 (family runs at once)")
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


#: What `--set` may name in a comparison recipe (`speechtok.config.apply_sets`); a family's
#: ``set`` is that family's own overrides, one key each (``families.text.set.ger.train.max_steps``).
SCHEMA: dict[str, Any] = {
    "description": LEAF, "data": CompareData, "llm": {k: LEAF for k in LLM_KEYS},
    "budget": {"steps": LEAF}, "threads": LEAF, "workers": LEAF, "backbone": LEAF,
    "families": {name: {"enabled": LEAF, "recipe": LEAF, "set": OPAQUE} for name in FAMILIES},
}


def _backbones(value: Any) -> tuple[str, ...]:
    """`backbone:` as a tuple: one name or a list of names."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError("backbone", value, f"must be one or a list of {list(BACKBONES)}")


def _check_families(families: Any) -> dict[str, Any]:
    """`families:` of a recipe file, every name and key checked (the generic loader checks only the
    top level, so ``tokn:`` or ``enabeld: false`` used to be ignored without a word)."""
    if families is None:
        return {}
    if not isinstance(families, dict):
        raise ConfigError("families", families, "must be a mapping of family name -> {recipe, enabled, set}")
    for name, spec in families.items():
        if name not in FAMILIES:
            raise unknown_setting(f"families.{name}", spec, "families", str(name), FAMILIES)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise ConfigError(f"families.{name}", spec, "must be a mapping with `recipe` (and `enabled`, `set`)")
        keys = SCHEMA["families"][name]
        for key, value in spec.items():
            if key not in keys:
                raise unknown_setting(f"families.{name}.{key}", value, f"families.{name}", str(key), keys)
    return families


def load_compare_recipe(path: Path, sets: Mapping[str, Any] | None = None) -> tuple[CompareRecipe, dict[str, Any]]:
    """Parses and validates the recipe at `path` with `--set` values `sets`
    (`speechtok.config.parse_sets`); returns it and the raw dict."""
    raw = load_recipe_dict(path, sets or {}, SCHEMA, what="comparison recipe")
    d = dict(raw.get("data") or {})
    if "shards" not in d:
        raise ConfigError("data.shards", None, "must name the shard directory of the corpus")
    d["shards_sets"] = {str(k): v for k, v in (d.get("shards_sets") or {}).items()}
    data = build(CompareData, d, "data")
    families = _check_families(raw.get("families"))
    fams = []
    for name in FAMILIES:
        f = dict(families.get(name) or {})
        if not f and name in OPTIONAL_FAMILIES:
            continue
        if "recipe" not in f:
            raise ConfigError(f"families.{name}.recipe", None, "must name that family's trainer recipe")
        # typed values, applied by the family's own recipe loader (`speechtok.config.apply_sets`)
        fam_sets = {str(k): v for k, v in (f.get("set") or {}).items()}
        fams.append(FamilySpec(name=name, enabled=bool(f.get("enabled", True)), recipe=Path(f["recipe"]),
                               sets=fam_sets))
    recipe = CompareRecipe(description=str(raw.get("description", "")), data=data,
                           llm={k: typed(v, int, f"llm.{k}") for k, v in (raw.get("llm") or {}).items()},
                           steps=typed((raw.get("budget") or {}).get("steps", 0), int, "budget.steps"),
                           families=tuple(fams), threads=typed(raw.get("threads", 1), int, "threads"),
                           workers=typed(raw.get("workers", 1), int, "workers"),
                           backbones=_backbones(raw.get("backbone", "scratch")))
    recipe.validate()
    return recipe, raw
