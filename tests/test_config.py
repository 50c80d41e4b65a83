"""`speechtok.config`: one `--set` parser, one dotted-key setter, one placeholder syntax, one
builder; and `--set` behaving the same in ``speechtok run``, ``train`` and ``compare``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from speechtok.cli import main
from speechtok.compare.recipe import load_compare_recipe
from speechtok.config import (
    LEAF,
    OPAQUE,
    apply_sets,
    build,
    expand,
    fingerprint_of,
    load_recipe_dict,
    parse_sets,
    read_recipe,
    to_json,
)
from speechtok.errors import ConfigError
from speechtok.paths import ROOT, shared_dir
from speechtok.pipeline.recipe import load_recipe
from speechtok.trainers.cascade.recipe import load_recipe as cascade_load_recipe
from speechtok.trainers.latent.train import run_recipe as latent_run_recipe
from speechtok.trainers.loop import LoopConfig
from speechtok.trainers.token.train import SCHEMA as TOKEN_SCHEMA
from speechtok.trainers.token.train import run_recipe as token_run_recipe


@dataclass(frozen=True, kw_only=True)
class _Inner:
    n: int = 1
    rate: float = 0.5
    names: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.n < 0:
            raise ConfigError("inner.n", self.n, "must be >= 0")


@dataclass(frozen=True, kw_only=True)
class _Outer:
    path: Path
    inner: _Inner = field(default_factory=_Inner)
    extra: dict[str, object] = field(default_factory=dict)
    maybe: Path | None = None


def test_parse_sets_reads_one_yaml_value_per_key() -> None:
    assert parse_sets(["a=7", "b=0.5", "c=true", "d=[x, y]", "e=null", "f=", "g=x=y", "h=/a: b:"]) == \
        {"a": 7, "b": 0.5, "c": True, "d": ["x", "y"], "e": None, "f": "", "g": "x=y", "h": "/a: b:"}
    for bad in ("novalue", "=1"):
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            parse_sets([bad])


def test_apply_sets_checks_every_key_against_the_schema() -> None:
    raw = apply_sets({"inner": {"n": 2}}, {"inner.rate": 0.25, "extra.a.b": 1, "path": "/x"}, _Outer)
    assert raw == {"inner": {"n": 2, "rate": 0.25}, "extra": {"a.b": 1}, "path": "/x"}
    with pytest.raises(ConfigError, match=re.escape("inner has no `bogus` (valid keys there: "
                                                    "['n', 'names', 'rate'])")):
        apply_sets({}, {"inner.bogus": 1}, _Outer)
    with pytest.raises(ConfigError, match="path has no `x`"):
        apply_sets({}, {"path.x": 1}, _Outer)
    with pytest.raises(ConfigError, match="not a section"):
        apply_sets({"inner": 3}, {"inner.n": 1}, _Outer)
    explicit = {"vars": OPAQUE, "k": LEAF}
    assert apply_sets({}, {"vars.a.b": 1, "k": 2}, explicit) == {"vars": {"a.b": 1}, "k": 2}


def test_build_types_validates_and_round_trips() -> None:
    obj = build(_Outer, {"path": "/data", "inner": {"n": 3, "names": ["a", "b"], "rate": 1},
                         "maybe": "/m"}, "outer")
    assert obj.path == Path("/data") and obj.maybe == Path("/m")
    assert obj.inner == _Inner(n=3, names=("a", "b"), rate=1)
    assert build(_Outer, to_json(obj), "outer") == obj
    assert to_json(obj)["inner"]["names"] == ["a", "b"]
    with pytest.raises(ConfigError, match=re.escape("`outer.inner.n` must be an integer")):
        build(_Outer, {"path": "/d", "inner": {"n": "3"}}, "outer")
    with pytest.raises(ConfigError, match=re.escape("`inner.n` must be >= 0")):
        build(_Outer, {"path": "/d", "inner": {"n": -1}}, "outer")
    with pytest.raises(ConfigError, match=re.escape("`outer.path` must be given")):
        build(_Outer, {}, "outer")
    with pytest.raises(ConfigError, match="outer has no `pth`"):
        build(_Outer, {"path": "/d", "pth": "/e"}, "outer")
    assert fingerprint_of({"a": 1, "b": [1]}) == fingerprint_of({"b": [1], "a": 1})


@pytest.mark.parametrize("text, value", [("3e-4", 3e-4), ("1E5", 1e5), ("-2e+3", -2e3), ("1.5e3", 1500.0),
                                         ("+.5e1", 5.0)])
def test_exponent_numbers_are_floats_for_float_fields(text: str, value: float) -> None:
    assert parse_sets([f"inner.rate={text}"]) == {"inner.rate": text}  # YAML 1.1 reads it as text
    rate = build(_Outer, apply_sets({"path": "/d"}, parse_sets([f"inner.rate={text}"]), _Outer), "o").inner.rate
    assert isinstance(rate, float) and rate == value
    from_file = build(_Outer, yaml.safe_load(f"path: /d\ninner: {{rate: {text}}}\n"), "o")
    assert from_file.inner.rate == value  # a recipe file reads the same as --set


def test_exponent_numbers_for_int_and_str_fields() -> None:
    assert build(_Inner, {"n": "1e3"}, "inner").n == 1000 and isinstance(build(_Inner, {"n": "1E3"}, "i").n, int)
    with pytest.raises(ConfigError, match=re.escape("`inner.n` must be an integer (a number in exponent form "
                                                    "must be whole), but is '1e-3' instead.")):
        build(_Inner, {"n": "1e-3"}, "inner")
    assert build(_Inner, {"names": ["1e3"]}, "inner").names == ("1e3",)  # text where the field is text
    with pytest.raises(ConfigError, match="must be a number"):
        build(_Inner, {"rate": "3e-4x"}, "inner")


def test_set_train_lr_in_exponent_form() -> None:
    raw = load_recipe_dict(TOKEN, parse_sets(["train.lr=3e-4", "train.max_steps=2e2"]), TOKEN_SCHEMA)
    loop = build(LoopConfig, raw["train"], "train")
    assert loop.lr == 3e-4 and loop.max_steps == 200 and isinstance(loop.max_steps, int)


def test_expand_has_one_placeholder_syntax() -> None:
    assert expand("${shared}/data") == f"{shared_dir()}/data"
    assert expand({"a": ["${root}"]}) == {"a": [str(ROOT)]}
    assert expand("${k}", {"k": 7}) == 7 and expand("k=${k}", {"k": 7}) == "k=7"
    assert expand("{shared}") == "{shared}"  # the old syntax is plain text now
    with pytest.raises(ConfigError, match=re.escape("uses ${nope}")):
        expand("${nope}/x")


def test_recipes_use_only_the_one_placeholder_syntax() -> None:
    old = re.compile(r"(?<!\$)\{(shared|root|whisper_tiny_en)\}")
    bad = [p.name for p in (ROOT / "recipes").glob("*.yaml") if old.search(p.read_text())]
    assert not bad, f"recipes with the old {{shared}} placeholders: {bad}"


# --------------------------------------------------------------------------- run / train / compare

DEMO = ROOT / "recipes" / "demo.yaml"
TOKEN = ROOT / "recipes" / "token_tiny.yaml"
COMPARE = ROOT / "recipes" / "compare_demo.yaml"


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    return err.split(": error: ", 1)[1]


def test_set_behaves_the_same_in_run_train_and_compare(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    commands = {
        "run": ["run", str(DEMO), "-o", str(tmp_path / "run")],
        "train": ["train", "token", str(TOKEN), "-o", str(tmp_path / "train")],
        "compare": ["compare", str(COMPARE), "-o", str(tmp_path / "compare"),
                    "--set", "data.shards=/nonexistent"],
    }
    # an unknown key: the same ConfigError from every command (only the valid keys differ)
    errors = {}
    for name, argv in commands.items():
        msg = _cli_error([*argv, "--set", "nosuch.key=1"], capsys)
        errors[name] = re.sub(r"\(valid keys there: \[[^\]]*\]\)", "(valid keys there: ...)", msg)
    assert set(errors.values()) == {"`nosuch.key` is not a setting: the recipe has no `nosuch` "
                                    "(valid keys there: ...), but is 1 instead."}, errors
    assert not any((tmp_path / n).exists() for n in ("run", "train"))  # refused before any work
    # a value of the wrong type: a ConfigError naming the key, from every command
    for argv, key in ((commands["run"], "shards.cuts_per_shard"), (commands["train"], "train.max_steps"),
                      (commands["compare"], "budget.steps")):
        msg = _cli_error([*argv, "--set", f"{key}=many"], capsys)
        assert msg.startswith(f"`{key}` must be an int") and msg.endswith("but is 'many' instead."), msg
    # a valid key: the same typed value wherever it lands
    sets = parse_sets(["shards.cuts_per_shard=7", "train.max_steps=7", "budget.steps=7"])
    run = load_recipe(DEMO, sets={"shards.cuts_per_shard": sets["shards.cuts_per_shard"]})
    raw = load_recipe_dict(TOKEN, {"train.max_steps": sets["train.max_steps"]}, TOKEN_SCHEMA)
    cmp, _ = load_compare_recipe(COMPARE, {"data.shards": "/x", "budget.steps": sets["budget.steps"]})
    assert run.cuts_per_shard == build(LoopConfig, raw["train"], "train").max_steps == cmp.steps == 7


# --------------------------------------------------------------------------- one recipe reader

#: Every kind of recipe file: its loader (path -> raises) and its command line (path -> argv).
RECIPE_KINDS: dict[str, tuple[Callable[[Path], object], Callable[[Path], list[str]]]] = {
    "pipeline": (lambda p: load_recipe(p), lambda p: ["run", str(p), "-o", str(p.parent / "out")]),
    "token": (lambda p: token_run_recipe(p, p.parent / "out", {}),
              lambda p: ["train", "token", str(p), "-o", str(p.parent / "out")]),
    "latent": (lambda p: latent_run_recipe(p, p.parent / "out", {}),
               lambda p: ["train", "latent", str(p), "-o", str(p.parent / "out")]),
    "cascade": (lambda p: cascade_load_recipe(p), lambda p: ["train", "cascade", str(p), "-o", str(p.parent / "out")]),
    "compare": (lambda p: load_compare_recipe(p), lambda p: ["compare", str(p), "-o", str(p.parent / "out")]),
}

#: A broken recipe file -> (its bytes, or None for no file / a directory, and what the error says).
BROKEN = {
    "missing": (None, "must be a YAML file such as recipes/demo.yaml (found nothing there)"),
    "directory": (b"", "(found a directory there)"),
    "syntax": (b"data: {shards: [1, 2\n", "must be valid YAML (while parsing a flow sequence"),
    "list": (b"- data\n- llm\n", "must hold a YAML mapping of sections at its top level (it holds a list)"),
    "scalar": (b"just text\n", "(it holds a str)"),
    "not_utf8": (b"data: \xff\xfe\n", "must be a readable UTF-8 text file"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
@pytest.mark.parametrize("kind", sorted(RECIPE_KINDS))
def test_every_recipe_kind_refuses_a_broken_file_the_same_way(kind: str, broken: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    load, argv = RECIPE_KINDS[kind]
    data, says = BROKEN[broken]
    path = tmp_path / "recipe.yaml"
    if broken == "directory":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.value == str(path) and says in str(err.value), str(err.value)
    assert str(err.value).endswith(f", but is {str(path)!r} instead.")
    assert _cli_error(argv(path), capsys) == str(err.value)  # exit code 1, the same message
    assert not (tmp_path / "out").exists()


def test_an_empty_recipe_file_is_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert read_recipe(path) == {}
    with pytest.raises(ConfigError, match=re.escape("`ingest.source` must name a corpus")):
        load_recipe(path)
    with pytest.raises(ConfigError, match=re.escape("`data.shards` must name the shard directory")):
        load_compare_recipe(path)
