"""The cascade recipe: a YAML file (read with ``yaml.safe_load``) of five sections.

```yaml
data:      {kaldi_dir, split_ratios: [0.7, 0.15, 0.15], split_seed, max_utts_per_split,
            max_train_utts, extra_text}
nbest:     {decoder: whisper|sphinx|ctc, model_dir, beam_size, num_hypotheses, batch_size, threads, cache,
            ctc_run, shards}
text_lm:   {vocab_size, llm: LLMConfig, train: LoopConfig, batching: BatchingConfig}
rescoring: {am_norm, lm_norm, lambda_step, ngram_baseline, lm_batch_size}
ger:       {enabled, prompt: short|h2t, train_on_inputs, max_new_tokens, infer_batch_size,
            llm: LLMConfig (path, mode: full|lora, lora_*), train: LoopConfig, batching: BatchingConfig}
lm_model_dir: null   # a ready HF causal LM instead of training text_lm
device: cpu
threads: 2
```

String values may contain ``${shared}`` (the ``SPEECHTOK_SHARED`` environment variable, else
``../shared`` next to the project) and ``${root}`` (the project directory); other relative paths
are relative to the working directory. Overrides (``--set ger.train.max_steps=100``) go through
`speechtok.config` like every command's. The sections are the library configs: the LMs are
`LLMConfig` (``text_lm.llm``, ``ger.llm``), their training `LoopConfig` (``text_lm.train``,
``ger.train``: the loop the other families use) and `BatchingConfig`. The top-level ``device``
and ``seed`` are those of ``text_lm.train`` and ``ger.train`` unless they set their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speechtok.config import build, expand, load_recipe_dict
from speechtok.errors import ConfigError, InputError
from speechtok.trainers.cascade.ger import GERConfig
from speechtok.trainers.cascade.rescoring import NORMS
from speechtok.trainers.cascade.text_lm import TextLMConfig


@dataclass(frozen=True, kw_only=True)
class DataSection:
    kaldi_dir: Path
    split_ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = 0
    max_utts_per_split: int = 0  # 0 = all
    max_train_utts: int = 0  # cap on the train split's n-best lists for GER (0 = all)
    extra_text: tuple[Path, ...] = ()  # more LM training text, one sentence per line
    test: Path | None = None  # a separate test set (Kaldi or shard dir): decoded and scored only


@dataclass(frozen=True, kw_only=True)
class NBestSection:
    decoder: str = "whisper"  # whisper | sphinx | ctc
    model_dir: Path | None = None
    ctc_run: Path | None = None  # ctc: a latent run (stage-1 CTC encoder)
    shards: Path | None = None  # ctc: shard output with that run's features group
    beam_size: int = 5
    num_hypotheses: int = 5
    batch_size: int = 8
    threads: int = 0
    cache: Path | None = None


@dataclass(frozen=True, kw_only=True)
class RescoringSection:
    am_norm: str = "sum"
    lm_norm: str = "sum"
    lambda_step: float = 0.05
    ngram_baseline: bool = True
    lm_batch_size: int = 64


@dataclass(frozen=True, kw_only=True)
class CascadeRecipe:
    """A whole cascade run; `validate()` checks every section."""

    data: DataSection
    nbest: NBestSection = field(default_factory=NBestSection)
    text_lm: TextLMConfig = field(default_factory=TextLMConfig)
    lm_model_dir: Path | None = None  # a ready HF causal LM instead of training text_lm
    rescoring: RescoringSection = field(default_factory=RescoringSection)
    ger: GERConfig = field(default_factory=GERConfig)
    device: str = "cpu"
    threads: int = 0
    seed: int = 0

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad field."""
        d = self.data
        if not (d.kaldi_dir / "wav.scp").exists():
            raise ConfigError("data.kaldi_dir", str(d.kaldi_dir), "must be a Kaldi-style directory with wav.scp")
        if len(d.split_ratios) != 3 or abs(sum(d.split_ratios) - 1) > 1e-6 or min(d.split_ratios) <= 0:
            raise ConfigError("data.split_ratios", d.split_ratios, "must be 3 positive numbers summing to 1")
        if d.max_train_utts < 0:
            raise ConfigError("data.max_train_utts", d.max_train_utts, "must be >= 0 (0 = all)")
        if d.max_utts_per_split < 0:
            raise ConfigError("data.max_utts_per_split", d.max_utts_per_split, "must be >= 0 (0 = all)")
        n = self.nbest
        if n.decoder not in ("whisper", "sphinx", "ctc"):
            raise ConfigError("nbest.decoder", n.decoder, "must be 'whisper', 'sphinx' or 'ctc'")
        if n.decoder == "ctc" and (n.ctc_run is None or not (n.ctc_run / "stage1").is_dir()):
            raise ConfigError("nbest.ctc_run", str(n.ctc_run), "must be a latent training run (with stage1/)")
        if n.decoder == "ctc" and (n.shards is None or not (n.shards / "index.json").is_file()):
            raise ConfigError("nbest.shards", str(n.shards), "must be a shard output with the run's features")
        if n.decoder == "whisper" and (n.model_dir is None or not (n.model_dir / "model.bin").exists()):
            raise ConfigError("nbest.model_dir", str(n.model_dir), "must be a CTranslate2 Whisper directory")
        if not 1 <= n.num_hypotheses <= n.beam_size:
            raise ConfigError("nbest.num_hypotheses", n.num_hypotheses, f"must be in [1, beam_size={n.beam_size}]")
        self.text_lm.validate()
        if self.lm_model_dir is not None and not self.lm_model_dir.is_dir():
            raise ConfigError("lm_model_dir", str(self.lm_model_dir), "must be a local HF causal LM directory")
        r = self.rescoring
        for name in ("am_norm", "lm_norm"):
            if getattr(r, name) not in NORMS:
                raise ConfigError(f"rescoring.{name}", getattr(r, name), f"must be one of {NORMS}")
        if not 0 < r.lambda_step <= 1:
            raise ConfigError("rescoring.lambda_step", r.lambda_step, "must be in (0, 1]")
        self.ger.validate()
        if self.threads < 0:
            raise ConfigError("threads", self.threads, "must be >= 0 (0 = library default)")


def recipe_from_dict(raw: dict[str, Any]) -> CascadeRecipe:
    """Builds and validates a `CascadeRecipe` from a parsed YAML dict (``${...}`` expanded);
    ``text_lm.train`` and ``ger.train`` take the top-level ``device`` and ``seed`` unless they
    set their own."""
    raw = expand(raw)
    if "data" not in raw:
        raise ConfigError("data", None, "must be given (data.kaldi_dir at least)")
    recipe = build(CascadeRecipe, raw, "")

    def top(section: str) -> Any:
        given = (raw.get(section) or {}).get("train") or {}
        cfg = getattr(recipe, section).train
        return replace(cfg, device=given.get("device", recipe.device), seed=given.get("seed", recipe.seed))

    return replace(recipe, text_lm=replace(recipe.text_lm, train=top("text_lm")),
                   ger=replace(recipe.ger, train=top("ger")))


#: Keys of the ``text_lm:`` and ``ger:`` sections of cascade recipes written before the config layer
#: (CHANGELOG, 2026-12-06 "stop 23") -> the keys that replaced them, within the same section. Every old
#: key has a new one; an old ``learning_rate`` also brings its old decay floor, ``train.min_lr = lr / 10``.
_OLD_TRAIN_KEYS = {"steps": "train.max_steps", "learning_rate": "train.lr", "warmup_steps": "train.warmup_steps",
                   "weight_decay": "train.weight_decay", "seed": "train.seed", "device": "train.device",
                   "batch_size": "batching.max_batch"}
OLD_KEYS: dict[str, dict[str, str]] = {
    "text_lm": {"kind": "llm.kind", "hidden_size": "llm.hidden_size", "num_layers": "llm.num_layers",
                "num_heads": "llm.num_heads", "intermediate_size": "llm.intermediate_size",
                "max_length": "llm.max_positions", **_OLD_TRAIN_KEYS},
    "ger": {"base_model": "llm.path", "mode": "llm.mode", "lora_r": "llm.lora_r", "lora_alpha": "llm.lora_alpha",
            "lora_dropout": "llm.lora_dropout", **_OLD_TRAIN_KEYS},
}


def upgrade_old_keys(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`raw` (a cascade recipe mapping) with the old keys of `OLD_KEYS` moved to their new places.

    ``{"ger": {"steps": 5, "mode": "lora"}}`` -> ``{"ger": {"train": {"max_steps": 5}, "llm": {"mode":
    "lora"}}}``; a recipe with only new keys comes back equal. `where` names the recipe in errors.

    Raises:
        ConfigError: an old key and the key that replaced it are both given with different values, or
            the new key's section is not a mapping.
    """
    out = dict(raw)
    for section, table in OLD_KEYS.items():
        given = out.get(section)
        if not isinstance(given, Mapping) or not set(given) & set(table):
            continue
        new = {k: dict(v) if isinstance(v, Mapping) else v for k, v in given.items() if k not in table}
        for key, target in table.items():
            if key not in given:
                continue
            head, leaf = target.split(".")
            node = new.setdefault(head, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{section}.{head}", node, f"must be a mapping in {where} (old key "
                                  f"`{section}.{key}` moves into it as `{section}.{target}`)")
            if leaf in node and node[leaf] != given[key]:
                raise ConfigError(f"{section}.{key}", given[key], f"must agree with `{section}.{target}`="
                                  f"{node[leaf]!r}, the key that replaced it, in {where} (give only one)")
            node[leaf] = given[key]
        lr = given.get("learning_rate")
        if isinstance(lr, int | float) and not isinstance(lr, bool) and "min_lr" not in new["train"]:
            new["train"]["min_lr"] = lr / 10  # the old loop decayed to lr / 10
        out[section] = new
    return out


def read_run_recipe(path: Path) -> CascadeRecipe:
    """The recipe a cascade run recorded (``RUN/recipe.resolved.json``), also when the run was written
    before the config layer (old keys upgraded by `upgrade_old_keys`).

    Raises:
        InputError: `path` is missing or not a JSON mapping. ConfigError: as `recipe_from_dict`.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot be read as the run's recipe ({exc})") from exc
    if not isinstance(raw, dict):
        raise InputError(str(path), f"must be a JSON mapping of recipe sections, but is {type(raw).__name__}")
    return recipe_from_dict(upgrade_old_keys(raw, str(path)))


def load_recipe(path: Path, sets: Mapping[str, Any] | None = None) -> tuple[CascadeRecipe, dict[str, Any]]:
    """Reads a recipe YAML (`speechtok.config.load_recipe_dict`), applies `--set` values
    (`speechtok.config.parse_sets`); returns the recipe and the resolved raw dict.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML or not a mapping; a bad setting.
    """
    raw = load_recipe_dict(path, sets or {}, CascadeRecipe, what="cascade recipe")
    return recipe_from_dict(raw), raw
