"""Recipes and `--set`: the one place a raw mapping becomes the library's typed config.

A recipe is a YAML mapping (``yaml.safe_load``); each section is the config dataclass of the
component it configures (`FbankConfig`, `KMeansConfig`, `LoopConfig`...), never a copy of it.
The steps, the same for ``speechtok run``, ``train`` and ``compare``:

1. `parse_sets`: ``--set KEY=VALUE`` items -> ``{KEY: value}``; a value is read as one YAML
   scalar (``100`` int, ``0.5`` float, ``true`` bool, ``[a, b]`` list, ``null`` None, anything
   that is not valid YAML stays text; ``3e-4``, text to YAML 1.1, becomes a number in `build`
   where the field is a number).
2. `apply_sets`: dotted keys onto the raw recipe, checked against the recipe's schema (its tree
   of config dataclasses). A key that names no setting is a `ConfigError` naming the key and the
   valid keys at that level; an opaque map (``families.text.set``, a stage's ``features``)
   takes the rest of the key as one key.
3. `expand`: ``${name}`` in strings, from the recipe's ``vars`` and the built-ins ``shared``
   (`speechtok.paths.shared_dir`), ``root`` (the project directory) and ``whisper_tiny_en``
   (`speechtok.paths.whisper_tiny_en_dir`). A string that is exactly ``${name}`` takes the
   variable's value with its type.
4. `build(cls, raw, where)`: the mapping -> ``cls``: unknown keys refused, nested dataclasses
   built, lists become tuples, strings become `Path` where the field is a path, scalar types
   checked, then ``validate()`` once.

`to_json` is the inverse of `build` (what a run records), `fingerprint_of` the hash of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from speechtok.errors import ConfigError, InputError
from speechtok.paths import ROOT, WHISPER_TINY_EN, shared_dir, whisper_tiny_en_dir

T = TypeVar("T")

#: A schema node: a config dataclass type, an explicit mapping of names to schema nodes, `LEAF`
#: (one value) or `OPAQUE` (a free mapping that takes the rest of a dotted key as one key).
Schema = type | Mapping[str, Any] | str
LEAF = "leaf"
OPAQUE = "opaque"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: A number in exponent form that YAML 1.1 (PyYAML) leaves as text: ``3e-4``, ``1E5``,
#: ``-2e+3``, ``1.5e3`` (it reads only ``1.5e+3``, with a dot and a signed exponent, as a float).
_EXPONENT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``["train.max_steps=100", "corpus=/data/x"]`` -> ``{"train.max_steps": 100,
    "corpus": "/data/x"}``: each value is one YAML scalar (text that is not YAML stays text;
    an empty value is ``""``).

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", item, "must look like KEY=VALUE (e.g. --set train.max_steps=100)")
        out[key.strip()] = parse_value(text)
    return out


def parse_value(text: str) -> Any:
    """One ``--set`` value: a YAML scalar, list or mapping; text that is not YAML stays text."""
    if not text.strip():
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a hint that names a type only imported for checking: keep it as text
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _node(schema: Any) -> Any:
    """A schema node for a field type: a dataclass type, `OPAQUE` for maps, else `LEAF`."""
    hint = _strip_optional(schema)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    if hint is dict or typing.get_origin(hint) in (dict, Mapping, typing.Mapping):
        return OPAQUE
    if isinstance(hint, Mapping) or hint in (LEAF, OPAQUE):
        return hint
    return LEAF


def _children(schema: Any) -> dict[str, Any] | str:
    """The named children of a schema node, or `LEAF` / `OPAQUE`."""
    if isinstance(schema, Mapping):
        return {str(k): _node(v) for k, v in schema.items()}
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        return {name: _node(hint) for name, hint in _hints(schema).items()
                if name in {f.name for f in dataclasses.fields(schema) if f.init}}
    return str(schema)


def unknown_setting(key: str, value: Any, where: str, name: str, valid: Iterable[str]) -> ConfigError:
    """The one error for a key that names no setting, whichever command read it: `key` (as
    given) names `name` under `where` ("" = the recipe's top), which has only `valid`."""
    return ConfigError(key, value, f"is not a setting: {where or 'the recipe'} has no `{name}` "
                       f"(valid keys there: {sorted(valid)})")


def apply_sets(raw: Mapping[str, Any], sets: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """`raw` (a recipe mapping) with each dotted key of `sets` set to its value; a new dict.

    Every key is checked against `schema` before anything is set, so a typo fails the same way
    for every command: `ConfigError` naming the key and the valid keys where it went wrong.
    """
    out = _copy(raw)
    for key, value in sets.items():
        parts = key.split(".")
        node: dict[str, Any] = out
        level: Any = _node(schema) if not isinstance(schema, Mapping) else schema
        for i, part in enumerate(parts):
            children = _children(level)
            if children == OPAQUE:
                node[".".join(parts[i:])] = value
                break
            if children == LEAF or part not in children:
                raise unknown_setting(key, value, ".".join(parts[:i]), part,
                                      children if isinstance(children, dict) else ())
            assert isinstance(children, dict)
            if i == len(parts) - 1:
                node[part] = value
                break
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(key, value, f"cannot be set: `{'.'.join(parts[:i + 1])}` is "
                                  f"{child!r}, not a section")
            node, level = child, children[part]
    return out


def _copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else list(v) if isinstance(v, list) else v
            for k, v in raw.items()}


def builtin_vars() -> dict[str, str]:
    """The variables every recipe has: ``shared``, ``root`` and ``whisper_tiny_en`` (the
    CTranslate2 Whisper tiny.en files; where they are installed nowhere, their ``../shared``
    path, so that whatever reads it reports the missing files)."""
    try:
        whisper = whisper_tiny_en_dir()
    except InputError:
        whisper = shared_dir() / "models" / WHISPER_TINY_EN
    return {"shared": str(shared_dir()), "root": str(ROOT), "whisper_tiny_en": str(whisper)}


def expand(value: Any, variables: Mapping[str, Any] | None = None, *, where: str = "recipe") -> Any:
    """`value` with ``${name}`` replaced in every string (recursively in lists and mappings)
    from `variables` and the built-ins (`builtin_vars`; `variables` win). A string that is
    exactly ``${name}`` becomes the variable's value, type kept.

    Raises:
        ConfigError: a ``${name}`` that is not defined (the message lists the known names).
    """
    if isinstance(value, Mapping):
        return {k: expand(v, variables, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, variables, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    known = {**builtin_vars(), **(variables or {})}
    for name in _VAR.findall(value):
        if name not in known:
            raise ConfigError(where, value, f"uses ${{{name}}}, which is not a variable (known: "
                              f"{sorted(known)}); add it to `vars` or pass --set {name}=...")
    whole = _VAR.fullmatch(value)
    if whole:
        return known[whole.group(1)]
    return _VAR.sub(lambda m: str(known[m.group(1)]), value)


def typed(value: Any, hint: Any, where: str) -> Any:
    """`value` as the type `hint` (what `build` does to each field): config dataclasses built
    from mappings, lists -> tuples, str -> `Path`, ints / floats / bools / strings checked.

    A number in exponent form that YAML 1.1 reads as text (``3e-4``, ``1E5``, ``-2e+3``) is a
    float for a float field and an int for an int field when it is whole (``1e3`` -> 1000;
    ``1e-3`` is refused); a string field keeps the text.

    Raises:
        ConfigError: `value` cannot be a `hint` (named by `where`).
    """
    if value is None:
        return None
    hint = _strip_optional(hint)
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return value
        return build(hint, value, where)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(typed(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) == len(value):
            return tuple(typed(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        return tuple(value)
    if hint is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(where, value, "must be a path")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, value, "must be true or false")
    elif hint is int:
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            number = float(value)
            if not number.is_integer():
                raise ConfigError(where, value, "must be an integer (a number in exponent form must be whole)")
            value = int(number)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, value, "must be an integer")
    elif hint is float:
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, value, "must be a number")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, value, "must be a string")
    return value


def build(cls: type[T], raw: Mapping[str, Any] | None, where: str) -> T:
    """The config dataclass `cls` from the mapping `raw` (a recipe section), validated once.

    Unknown keys are a `ConfigError` naming the valid ones; nested config dataclasses are built
    from their mappings; lists become tuples for tuple fields; strings become `Path` for path
    fields; ints, floats, bools and strings are checked; then ``cls.validate()`` runs.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, f"must be a mapping of {cls.__name__} fields")
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    names = {f.name for f in fields}
    at = (lambda k: f"{where}.{k}") if where else (lambda k: k)
    unknown = sorted(set(raw) - names)
    if unknown:
        raise unknown_setting(at(unknown[0]), raw[unknown[0]], where, unknown[0], names)
    for f in fields:
        if f.name not in raw and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            raise ConfigError(at(f.name), None, "must be given")
    kwargs = {k: typed(v, hints.get(k, Any), at(k)) for k, v in raw.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_json(obj: Any) -> Any:
    """The JSON form of a config dataclass tree (tuples -> lists, paths -> strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every fingerprint."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def fingerprint_of(payload: Mapping[str, Any]) -> str:
    """sha256 hex (first 32 chars) of the canonical JSON of `payload`."""
    return hashlib.sha256(canonical_json(dict(payload)).encode()).hexdigest()[:32]


def read_recipe(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """The YAML mapping in the recipe file `path` (``yaml.safe_load``; an empty file is ``{}``):
    the one reader of every recipe file (pipeline, token, latent, cascade, comparison).

    Raises:
        ConfigError: `path` is missing, unreadable, not valid YAML or not a mapping at its top
            level; the error's field is `what` (e.g. "comparison recipe"), its value the path.
    """
    p = Path(path)
    if not p.is_file():
        found = "a directory" if p.is_dir() else "nothing"
        raise ConfigError(what, str(p), f"must be a YAML file such as recipes/demo.yaml (found {found} there)")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(what, str(p), f"must be a readable UTF-8 text file ({exc})") from exc
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(what, str(p), f"must be valid YAML ({detail})") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(what, str(p), f"must hold a YAML mapping of sections at its top level "
                          f"(it holds a {type(raw).__name__})")
    return raw


def load_recipe_dict(path: str | Path, sets: Mapping[str, Any], schema: Schema, *,
                     what: str = "recipe") -> dict[str, Any]:
    """The recipe at `path` (`read_recipe`) as a dict, with `--set` values `sets`
    (`parse_sets`) applied against `schema` (a config dataclass, or section name -> config
    dataclass or schema node) and ``${...}`` expanded. `what` names the recipe in errors.

    Raises:
        ConfigError: as `read_recipe`; a top-level key or a `--set` key that names no setting;
            an undefined ``${name}``.
    """
    raw = read_recipe(path, what)
    sections = _children(schema)
    valid = sections if isinstance(sections, dict) else {}
    unknown = sorted(set(raw) - set(valid), key=str)
    if unknown:
        raise unknown_setting(str(unknown[0]), raw[unknown[0]], "", str(unknown[0]), valid)
    return dict(expand(apply_sets(raw, sets, schema)))
