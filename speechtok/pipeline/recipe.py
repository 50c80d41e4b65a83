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

``--set`` overrides (`speechtok.config`, the same for every command): ``NAME=VALUE`` sets a
var; ``ingest.FIELD=VALUE``, ``shards.cuts_per_shard=N`` and ``STAGE_NAME.CONFIG_KEY=VALUE`` set
those fields; a key that names nothing is a `ConfigError` listing the valid keys. Values are
YAML scalars (``64`` is an int, ``true`` a bool). ``${name}`` takes a var, or one of the
built-ins ``${shared}``, ``${root}``, ``${whisper_tiny_en}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechtok.config import LEAF, apply_sets, build, expand, read_recipe, unknown_setting
from speechtok.errors import ConfigError
from speechtok.pipeline.stage_types import stage_class
from speechtok.shards.names import check_stage_name

_TOP_KEYS = {"vars", "ingest", "shards", "stages", "description"}
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


def recipe_schema(stages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a dotted ``--set`` may name in a pipeline recipe: ``ingest.*``, ``shards.*`` and
    ``STAGE.KEY`` (the fields of that stage's config class). A key without a dot is a var."""
    schema: dict[str, Any] = {"ingest": IngestSpec, "shards": {"cuts_per_shard": LEAF}}
    for spec in stages:
        schema[str(spec["name"])] = stage_class(str(spec["type"])).config_cls
    return schema


def _stage_specs(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ConfigError("stages", raw, "must be a list of {type, name, input, config}")
    stages: list[dict[str, Any]] = []
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or "type" not in s:
            raise ConfigError(f"stages[{i}]", s, "must be a mapping with at least `type`")
        bad = sorted(set(s) - _STAGE_KEYS)
        if bad:
            raise ConfigError(f"stages[{i}].{bad[0]}", s[bad[0]],
                              f"is not a stage key (keys: {sorted(_STAGE_KEYS)})")
        stages.append({"type": str(s["type"]), "name": str(s.get("name") or s["type"]),
                       "input": s.get("input"), "config": dict(s.get("config") or {})})
    return stages


def recipe_from_dict(raw: Mapping[str, Any], *, sets: Mapping[str, Any] | None = None,
                     path: Path | None = None) -> Recipe:
    """Builds a `Recipe` from the YAML mapping `raw`, applying `--set` overrides `sets`
    (`speechtok.config.parse_sets`): ``NAME`` sets a var, ``ingest.FIELD``,
    ``shards.cuts_per_shard`` and ``STAGE.KEY`` set those fields (checked by
    `speechtok.config.apply_sets`); then ``${var}`` is expanded everywhere."""
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise unknown_setting(unknown[0], raw[unknown[0]], "", unknown[0], _TOP_KEYS)
    variables: dict[str, Any] = dict(raw.get("vars") or {})
    stages = _stage_specs(raw.get("stages") or [])
    # a var (no dot) or a section field: one view of the sections, checked by `apply_sets`
    view: dict[str, Any] = {"ingest": dict(raw.get("ingest") or {}),
                            "shards": dict(raw.get("shards") or {}),
                            **{s["name"]: s["config"] for s in stages}}
    schema = recipe_schema(stages)
    dotted = {k: v for k, v in (sets or {}).items() if "." in k}
    for key, value in (sets or {}).items():
        if "." in key:
            continue
        if key not in variables:
            raise unknown_setting(key, value, "", key, [*variables, *schema])
        variables[key] = value
    view = apply_sets(view, dotted, schema)
    body = expand({"ingest": view["ingest"], "shards": view["shards"],
                   "stages": [{**s, "config": view[s["name"]]} for s in stages]},
                  variables)
    ingest = build(IngestSpec, {"source": "", **body["ingest"]}, "ingest")
    shards_raw = dict(body["shards"])
    if set(shards_raw) - {"cuts_per_shard"}:
        extra = sorted(set(shards_raw) - {"cuts_per_shard"})[0]
        raise ConfigError(f"shards.{extra}", shards_raw[extra], "is not a field (cuts_per_shard)")
    recipe = Recipe(path=path, ingest=ingest,
                    cuts_per_shard=shards_raw.get("cuts_per_shard", 100),
                    stages=tuple(body["stages"]), vars=variables)
    recipe.validate()
    return recipe


def load_recipe(path: str | Path, *, sets: Mapping[str, Any] | None = None) -> Recipe:
    """Reads the YAML recipe at `path` (`speechtok.config.read_recipe`) with `--set` overrides.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML or not a mapping; as `recipe_from_dict`.
    """
    return recipe_from_dict(read_recipe(path), sets=sets, path=Path(path))
