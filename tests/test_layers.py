"""The import graph is the architecture: imports only go down the layers of DESIGN.md, and no
module imports another in a circle (module-level and function-level imports alike)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "speechtok"

#: Layers, lowest first; a module may import its own layer or one below. A package not listed
#: here is an error (add it where it belongs).
LAYERS: list[set[str]] = [
    {"errors", "atomic", "paths", "failures", "faults", "hub", "config", "hf_rows", "__init__"},
    {"manifests"},
    {"features"},
    {"shards"},
    {"tokenizers"},
    {"models"},
    {"pipeline"},
    {"trainers"},
    {"exports"},  # formats for other toolkits; a fairseq2 source plans batches with trainers.data
    {"compare"},
    {"cards"},
    {"commands", "cli", "__main__"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (``from speechtok import hub`` -> ``speechtok.hub``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "speechtok")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "speechtok":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {m: imports_of(p, known) for m, p in mods.items()}
    for m, deps in g.items():  # a package's own __init__ is not an edge to its contents
        g[m] = {d for d in deps if d != m and not m.startswith(d + ".")}
    return g


def test_every_package_has_a_layer() -> None:
    missing = sorted({layer_of(m) for m in modules()} - set(LEVEL))
    assert not missing, f"packages without a layer in tests/test_layers.py: {missing}"


def test_imports_only_go_down() -> None:
    upward = []
    for m, deps in graph().items():
        for d in deps:
            if LEVEL.get(layer_of(d), -1) > LEVEL.get(layer_of(m), -1):
                upward.append(f"{m} -> {d}")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `g` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _import_module_args(path: Path) -> list[str]:
    """The first argument of every ``import_module(...)`` call in `path`, as source text."""
    tree = ast.parse(path.read_text(), str(path))
    return [ast.unparse(node.args[0]) for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "import_module"
            and node.args]


#: The modules that may call ``importlib.import_module``, for what lies outside the package.
IMPORT_MODULE_USERS = {
    "speechtok.pipeline.stage_types": "stage plugins (register_stage_type)",
    "speechtok.features.fairseq2_lib": "fairseq2, retried after preloading its native library",
}


def test_no_importlib_probing_for_own_modules() -> None:
    """The project's own modules are imported by name (explicit imports and tables); only what
    lies outside the package goes through ``importlib.import_module``."""
    calls = {m: args for m, p in modules().items() if (args := _import_module_args(p))}
    assert set(calls) <= set(IMPORT_MODULE_USERS), f"modules that call importlib.import_module: {calls}"
    own = [a for args in calls.values() for a in args if "speechtok" in a]
    assert not own, f"import_module on the project's own modules: {own}"
    from speechtok.pipeline.stage_types import STAGE_TYPES

    assert all(isinstance(cls, type) for cls in STAGE_TYPES.values())  # classes, not "module:Class" strings


@pytest.mark.parametrize("g, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_cycle_finder_finds_cycles(g: dict[str, set[str]], cycle: bool) -> None:
    assert (find_cycle(g) is not None) == cycle


@pytest.mark.parametrize("layer, line", [
    ("pipeline", "from speechtok.trainers.loop import train"),
    ("models", "from speechtok.trainers.cascade.nbest import merge_equivalent"),  # models/ is below trainers/
])
def test_upward_import_is_caught(layer: str, line: str, tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(line + "\n")
    deps = imports_of(src, set(modules()))
    assert any(LEVEL[layer_of(d)] > LEVEL[layer] for d in deps)


#: Builtin exceptions the package may raise, each for a reason the project's types cannot serve.
BUILTIN_RAISES_ALLOWED = {
    ("*", "NotImplementedError"): "an abstract method, or a stage without that step",
    ("speechtok/__main__.py", "SystemExit"): "the exit code of `python -m speechtok`",
    ("speechtok/shards/reader.py", "IndexError"): "ShardDataset[i] out of range: the sequence protocol",
    ("speechtok/faults.py", "OSError"): "fault injection imitates the operating system's error",
}
BUILTIN_EXCEPTIONS = {name for name, obj in vars(builtins).items()
                      if isinstance(obj, type) and issubclass(obj, BaseException)}


def builtin_raises(path: Path, rel: str) -> list[str]:
    """``"rel:line: Name"`` for each ``raise Name(...)`` / ``raise Name`` of a builtin exception in
    `path` that `BUILTIN_RAISES_ALLOWED` does not allow."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
        if isinstance(target, ast.Attribute) and not (isinstance(target.value, ast.Name)
                                                      and target.value.id == "builtins"):
            continue  # `raise exc.with_traceback(...)`, `raise errors.X(...)`: not a builtin
        if name in BUILTIN_EXCEPTIONS and ("*", name) not in BUILTIN_RAISES_ALLOWED \
                and (rel, name) not in BUILTIN_RAISES_ALLOWED:
            out.append(f"{rel}:{node.lineno}: {name}")
    return out


def test_only_the_project_error_types_are_raised() -> None:
    """Errors say what they are: bad input (`InputError`), bad configuration (`ConfigError`), a
    broken invariant (`BugError`)... never a bare `ValueError`/`RuntimeError`/`TypeError`."""
    found = [hit for p in sorted(PKG.rglob("*.py"))
             for hit in builtin_raises(p, p.relative_to(PKG.parent).as_posix())]
    assert not found, "raise of a builtin exception; use speechtok.errors instead:\n" + "\n".join(found)


@pytest.mark.parametrize("line, caught", [
    ("raise ValueError('x')", True),
    ("raise RuntimeError", True),
    ("raise builtins.KeyError(k)", True),
    ("raise NotImplementedError", False),
    ("raise ConfigError('k', 1, 'must be 2')", False),
    ("raise errors.InputError('a', 'b')", False),
    ("raise", False),
])
def test_builtin_raise_is_caught(line: str, caught: bool, tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(f"def f(k):\n    {line}\n")
    assert bool(builtin_raises(src, "speechtok/m.py")) == caught
