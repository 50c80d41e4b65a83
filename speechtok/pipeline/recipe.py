"""YAML recipes: an ingest step, a shard size, and a chain of stages.

A recipe (``yaml.safe_load``; see ``recipes/demo.yaml``)::

    vars:                      # defaults, changed with --set NAME=VALUE
      corpus: demo             # "demo" = the embedded espeak-ng corpus
      k: 32
    ingest:
      source: ${corpus}        # a directory, Kaldi dir, JSONL, lhotse manifest, or "demo"
      kind: auto
      sample_rate: 16000
    shards:
      cuts_per_shard: 100      # shard j holds cuts [j*100, (j+1)*100) of the manifest
    stages:
      - {type: fbank, name: fbank, config: {num_mel_bins: 80}}
      - {type: kmeans_units, name: km32, input: feats.fbank, config: {k: ${k}}}

``--set`` overrides: ``NAME=VALUE`` sets a var; ``ingest.FIELD=VALUE``,
``shards.cuts_per_shard=N`` and ``STAGE_NAME.CONFIG_KEY=VALUE`` set those fields. Values are
parsed as YAML scalars (``64`` is an int, ``true`` a bool, anything else a string).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from speechtok.errors import ConfigError, SpeechtokError
from speechtok.shards.names import check_stage_name

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOP_KEYS = {"vars", "ingest", "shards", "stages", "description"}
_INGEST_KEYS = {"source", "kind", "sample_rate", "strict", "options"}
_STAGE_KEYS = {"type", "name", "input", "config"}


@dataclass(frozen=True, kw_only=True)
class IngestSpec:
    """How the corpus becomes ``OUT/ingest/cuts.jsonl.gz``.

    Attributes:
        source: corpus path, or ``"demo"`` for the embedded demo corpus.
        kind: ``auto|dir|kaldi|jsonl|lhotse`` (see ``speechtok ingest``), or ``cuts``: the
            source is a cuts manifest already made by ``speechtok ingest``, used as it is.
        sample_rate: resample every cut to this rate (Hz), or None to keep it.
        strict: fail on the first bad item instead of quarantining it.
        options: further `speechtok.manifests.ingest` options by name (``label_regex``,
            ``speaker_from``, ``text_tsv``, ``language``...).
    """

    source: str
    kind: str = "auto"
    sample_rate: int | None = None
    strict: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.source:
            raise ConfigError("ingest.source", self.source,
                              "must name a corpus (a path, or demo); pass --set corpus=PATH")
        if self.kind not in ("auto", "dir", "kaldi", "jsonl", "lhotse", "cuts"):
            raise ConfigError("ingest.kind", self.kind,
                              "must be one of auto, dir, kaldi, jsonl, lhotse, cuts")
        if self.sample_rate is not None and (not isinstance(self.sample_rate, int)
                                             or self.sample_rate < 1000):
            raise ConfigError("ingest.sample_rate", self.sample_rate, "must be an int >= 1000")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """A parsed recipe with every ``${var}`` substituted.

    Attributes:
        path: where it was read from (None when built from a dict).
        ingest: the ingest step.
        cuts_per_shard: cuts per data shard (the unit of work and of commit).
        stages: stage specs ``{"type", "name", "input", "config"}`` in execution order.
        vars: the variable values used (after ``--set``).
    """

    path: Path | None = None
    ingest: IngestSpec
    cuts_per_shard: int = 100
    stages: tuple[dict[str, Any], ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        self.ingest.validate()
        if not isinstance(self.cuts_per_shard, int) or self.cuts_per_shard < 1:
            raise ConfigError("shards.cuts_per_shard", self.cuts_per_shard, "must be an int >= 1")
        seen: set[str] = set()
        for spec in self.stages:
            check_stage_name(spec["name"])
            if spec["name"] in seen or spec["name"] == "cuts":
                raise ConfigError("stages.name", spec["name"],
                                  "must be unique and not 'cuts'; give each stage its own name")
            seen.add(spec["name"])

    def stage_names(self) -> list[str]:
        return [str(s["name"]) for s in self.stages]


def parse_raw_sets(items: Sequence[str] | None) -> dict[str, str]:
    """``["llm.hidden_size=64", "a=x=y"]`` -> ``{"llm.hidden_size": "64", "a": "x=y"}``: values
    stay text, for recipe loaders that parse them as YAML at the key they set (trainers, compare)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", item, "must look like key=value (e.g. --set train.max_steps=100)")
        out[key.strip()] = value
    return out


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["k=64", "corpus=/data/x"]`` -> ``{"k": 64, "corpus": "/data/x"}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SpeechtokError(
                f"`--set` takes KEY=VALUE, but got {item!r}; write e.g. --set corpus=/data/x")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)):
            value = raw
        out[key.strip()] = value
    return out


def _substitute(obj: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(obj, dict):
        return {k: _substitute(v, variables, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, variables, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, str):
        whole = _VAR.fullmatch(obj)
        for name in _VAR.findall(obj):
            if name not in variables:
                raise ConfigError(where, obj, f"uses ${{{name}}}, which is not in `vars` "
                                  f"(known: {sorted(variables)}); add it or pass --set {name}=...")
        if whole:
            return variables[whole.group(1)]
        return _VAR.sub(lambda m: str(variables[m.group(1)]), obj)
    return obj


def recipe_from_dict(raw: Mapping[str, Any], *, sets: Mapping[str, Any] | None = None,
                     path: Path | None = None) -> Recipe:
    """Builds a `Recipe` from the YAML mapping `raw`, applying `--set` overrides `sets`."""
    raw = copy.deepcopy(dict(raw))
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(unknown[0], raw[unknown[0]],
                          f"is not a recipe section (sections: {sorted(_TOP_KEYS)})")
    variables: dict[str, Any] = dict(raw.get("vars") or {})
    stage_list = raw.get("stages") or []
    if not isinstance(stage_list, list):
        raise ConfigError("stages", stage_list, "must be a list of {type, name, input, config}")
    stage_names = {str(s.get("name") or s.get("type")) for s in stage_list if isinstance(s, dict)}
    dotted: list[tuple[str, str, Any]] = []
    for key, value in (sets or {}).items():
        if "." in key:
            head, rest = key.split(".", 1)
            if head not in {"ingest", "shards"} | stage_names:
                raise ConfigError("--set", key, f"must start with a var ({sorted(variables)}), "
                                  f"ingest., shards., or a stage name ({sorted(stage_names)})")
            dotted.append((head, rest, value))
        elif key in variables:
            variables[key] = value
        else:
            raise ConfigError("--set", key, f"must name a var of the recipe ({sorted(variables)}) "
                              "or a dotted field such as ingest.sample_rate or STAGE.KEY")
    body = _substitute({k: v for k, v in raw.items() if k != "vars"}, variables, "recipe")
    ingest_raw = dict(body.get("ingest") or {})
    shards_raw = dict(body.get("shards") or {})
    stages: list[dict[str, Any]] = []
    for i, s in enumerate(body.get("stages") or []):
        if not isinstance(s, dict) or "type" not in s:
            raise ConfigError(f"stages[{i}]", s, "must be a mapping with at least `type`")
        bad = sorted(set(s) - _STAGE_KEYS)
        if bad:
            raise ConfigError(f"stages[{i}].{bad[0]}", s[bad[0]],
                              f"is not a stage key (keys: {sorted(_STAGE_KEYS)})")
        stages.append({"type": str(s["type"]), "name": str(s.get("name") or s["type"]),
                       "input": s.get("input"), "config": dict(s.get("config") or {})})
    for head, rest, value in dotted:
        if head == "ingest":
            ingest_raw[rest] = value
        elif head == "shards":
            shards_raw[rest] = value
        else:
            for spec in stages:
                if spec["name"] == head:
                    spec["config"][rest] = value
    bad_ingest = sorted(set(ingest_raw) - _INGEST_KEYS)
    if bad_ingest:
        raise ConfigError(f"ingest.{bad_ingest[0]}", ingest_raw[bad_ingest[0]],
                          f"is not an ingest field (fields: {sorted(_INGEST_KEYS)})")
    if set(shards_raw) - {"cuts_per_shard"}:
        extra = sorted(set(shards_raw) - {"cuts_per_shard"})[0]
        raise ConfigError(f"shards.{extra}", shards_raw[extra], "is not a field (cuts_per_shard)")
    ingest = IngestSpec(source=str(ingest_raw.get("source") or ""),
                        kind=str(ingest_raw.get("kind", "auto")),
                        sample_rate=ingest_raw.get("sample_rate"),
                        strict=bool(ingest_raw.get("strict", False)),
                        options=dict(ingest_raw.get("options") or {}))
    recipe = Recipe(path=path, ingest=ingest,
                    cuts_per_shard=shards_raw.get("cuts_per_shard", 100),
                    stages=tuple(stages), vars=variables)
    recipe.validate()
    return recipe


def load_recipe(path: str | Path, *, sets: Mapping[str, Any] | None = None) -> Recipe:
    """Reads the YAML recipe at `path` (safe_load) with `--set` overrides."""
    p = Path(path)
    if not p.is_file():
        raise SpeechtokError(f"recipe {str(p)!r} does not exist; pass a YAML file such as "
                             "recipes/demo.yaml")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SpeechtokError(f"recipe {str(p)!r} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpeechtokError(f"recipe {str(p)!r} must be a YAML mapping, but is {type(raw).__name__}")
    return recipe_from_dict(raw, sets=sets, path=p)
