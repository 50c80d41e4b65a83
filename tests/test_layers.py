"""The import graph is the architecture: imports only go down the layers of DESIGN.md, and no
module imports another in a circle (module-level and function-level imports alike)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
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


def over_package(check: Callable[[Path, str], list[str]]) -> list[str]:
    """What `check(path, "speechtok/...py")` finds in every module of the package, in file order."""
    return [hit for p in sorted(PKG.rglob("*.py")) for hit in check(p, p.relative_to(PKG.parent).as_posix())]


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
    found = over_package(builtin_raises)
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


#: Writes that are atomic by construction (file, enclosing function; ``*``: the whole file), each with
#: the reason. Everything else goes through `speechtok.atomic`.
DIRECT_WRITES_ALLOWED = {
    ("speechtok/exports/audio.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/espnet.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/formats.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/hf_audio.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/jsonl.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/shar.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/exports/slam.py", "*"): "inside export_output's atomic_dir temp",
    ("speechtok/shards/writer.py", "_HashingSink.__init__"): "a tmp shard file, fsynced, renamed on commit",
    ("speechtok/shards/index.py", "write_json_atomic"): "a tmp file (crash-test fault point), fsynced, renamed",
    ("speechtok/shards/index.py", "_index_lock"): "an flock lock file: opened for the lock, never written",
    ("speechtok/pipeline/lock.py", "RunLock._acquire_fallback"): "a tmp file, fsynced, hard-linked into place",
    ("speechtok/pipeline/input.py", "ingest_step"): "into the tmp ingest directory renamed into place",
    ("speechtok/models/checkpoint.py", "save_checkpoint"): "into the tmp checkpoint directory, fsynced, renamed",
    ("speechtok/manifests/quarantine.py", "QuarantineWriter.__enter__"): "a tmp file, fsynced, renamed on exit",
    ("speechtok/manifests/audio_bytes.py", "check_audio_bytes"): "a private mkstemp scratch file, deleted after",
    ("speechtok/models/nbest.py", "write_jsonl"): "append mode: an fsync per line, a reader drops a torn last line",
    ("speechtok/trainers/loop.py", "train"): "metrics.jsonl append log: a torn last line is ended on resume",
}
#: Calls that write a file at a path given as their argument (index of the path argument).
PATH_SAVERS = {"save_pretrained": 0, "savefig": 0, "np.save": 0, "np.savez": 0, "sf.write": 0,
               "soundfile.write": 0, "torch.save": 1, "pq.write_table": 1, "shutil.copyfile": 1,
               "shutil.copy": 1, "shutil.copy2": 1}
_MODULE_OPENS = {"gzip", "bz2", "lzma", "io", "codecs", "os"}
_ATOMIC_CONTEXTS = {"atomic_dir", "atomic_files", "atomic_open"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _write_mode(call: ast.Call, pos: int) -> bool:
    """Whether an ``open``-like call opens for writing (a non-constant mode counts as writing)."""
    mode = next((k.value for k in call.keywords if k.arg == "mode"), call.args[pos] if len(call.args) > pos else None)
    if mode is None:
        return False
    if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
        return True
    return any(c in mode.value for c in "wax+")


def _direct_write(call: ast.Call, safe: set[str]) -> str | None:
    """What `call` writes directly (``"write_text"``, ``"open('w')"``, ...), or None: reads, writes
    through `speechtok.atomic`, and writes into a buffer or a directory named in `safe` (names bound
    to ``io.BytesIO()`` or by ``with atomic_dir(...)/atomic_files(...) as name``)."""
    name = _dotted(call.func)
    attr = name.rsplit(".", 1)[-1]
    if name.startswith("atomic."):
        return None
    if attr in ("write_text", "write_bytes") and isinstance(call.func, ast.Attribute):
        target: ast.AST | None = call.func.value
    elif name == "open" or (attr in ("open", "fdopen") and name.split(".")[0] in _MODULE_OPENS):
        return f"{name}(w)" if _write_mode(call, 1) and name != "os.open" else None
    elif attr == "open" and isinstance(call.func, ast.Attribute):  # Path.open(mode)
        return f"{name}(w)" if _write_mode(call, 0) else None
    elif name in PATH_SAVERS or attr in ("save_pretrained", "savefig"):
        pos = PATH_SAVERS.get(name, PATH_SAVERS.get(attr, 0))
        target = call.args[pos] if len(call.args) > pos else None
    else:
        return None
    if target is not None and {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} & safe:
        return None
    return name


def _safe_names(fn: ast.AST) -> set[str]:
    """Names in `fn` bound to an in-memory buffer or to an atomic temporary directory."""
    out: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and _dotted(node.value.func).endswith("BytesIO"):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(item.context_expr, ast.Call) and isinstance(item.optional_vars, ast.Name) \
                        and _dotted(item.context_expr.func).rsplit(".", 1)[-1] in _ATOMIC_CONTEXTS:
                    out.add(item.optional_vars.id)
    return out


def direct_writes(path: Path, rel: str) -> list[str]:
    """``"rel:line: func: call"`` for each file write in `path` that bypasses `speechtok.atomic` and
    `DIRECT_WRITES_ALLOWED` does not allow."""
    out: list[str] = []

    def visit(node: ast.AST, scope: str, safe: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{scope}.{child.name}" if scope else child.name
                visit(child, inner, safe | (_safe_names(child) if not isinstance(child, ast.ClassDef) else set()))
                continue
            if isinstance(child, ast.Call) and (what := _direct_write(child, safe)) is not None \
                    and (rel, "*") not in DIRECT_WRITES_ALLOWED and (rel, scope) not in DIRECT_WRITES_ALLOWED:
                out.append(f"{rel}:{child.lineno}: {scope or '<module>'}: {what}")
            visit(child, scope, safe)

    visit(ast.parse(path.read_text(), str(path)), "", set())
    return out


def test_every_file_is_written_atomically() -> None:
    """Files are written through `speechtok.atomic` (a reader sees the old file or the new one,
    never half a file); `DIRECT_WRITES_ALLOWED` lists the writes that are atomic by construction."""
    found = [hit for p in sorted(PKG.rglob("*.py")) if p.name != "atomic.py" or p.parent != PKG
             for hit in direct_writes(p, p.relative_to(PKG.parent).as_posix())]
    assert not found, "file written without speechtok.atomic:\n" + "\n".join(found)


def test_direct_write_allow_list_is_current() -> None:
    """Every allow-list entry still names a file (and function) with a direct write."""
    stale = []
    for rel, scope in DIRECT_WRITES_ALLOWED:
        path = PKG.parent / rel
        hits = direct_writes(path, "") if path.is_file() else []
        if not any(scope == "*" or f": {scope}: " in h for h in hits):
            stale.append(f"{rel} {scope}")
    assert not stale, f"allow-list entries with no direct write left: {stale}"


@pytest.mark.parametrize("line, caught", [
    ("Path(p).write_text('x')", True),
    ("atomic.write_text(p, 'x')", False),
    ("open(p, 'w')", True),
    ("open(p, 'ab')", True),
    ("open(p)", False),
    ("open(p, 'rb')", False),
    ("p.open('w', encoding='utf-8')", True),
    ("p.open(encoding='utf-8')", False),
    ("gzip.open(p, 'wt')", True),
    ("fig.savefig(p / 'a.png')", True),
    ("buf = io.BytesIO(); fig.savefig(buf, format='png')", False),
    ("model.save_pretrained(str(p))", True),
    ("torch.save(sd, p)", True),
    ("sf.write(p, x, 16000)", True),
    ("with atomic.atomic_dir(p) as tmp: model.save_pretrained(str(tmp))", False),
    ("with atomic_open(p, 'wb') as fh: sf.write(fh, x, 16000, format='WAV')", False),
])
def test_direct_write_is_caught(line: str, caught: bool, tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(f"def f(p):\n    {line}\n")
    assert bool(direct_writes(src, "speechtok/m.py")) == caught


_LAZY = "# lazy:"


def unexplained_lazy_imports(path: Path, rel: str) -> list[str]:
    """``"rel:line: module"`` for each import inside a function of `path` that does not say why it is
    not at module level: a ``# lazy: REASON`` comment on its line or on the line above it (the line
    above a run of adjacent imports covers the run)."""
    lines = path.read_text().splitlines()
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse("\n".join(lines), str(path)), False)
    start_of_run_ending = {node.end_lineno: node.lineno for node in found}

    def says_why(line: int) -> bool:  # 1-based; a reason must follow the marker
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return _LAZY in text and bool(text.split(_LAZY, 1)[1].strip())

    out = []
    for node in found:
        first = node.lineno
        while first - 1 in start_of_run_ending:
            first = start_of_run_ending[first - 1]
        if not any(says_why(n) for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)) \
                and not says_why(first - 1):
            names = node.module if isinstance(node, ast.ImportFrom) else ", ".join(a.name for a in node.names)
            out.append(f"{rel}:{node.lineno}: {names}")
    return out


def test_function_level_imports_say_why() -> None:
    """Imports sit at module level, so the import graph is the architecture; an import inside a
    function is for a heavy or optional library (torch, transformers, lhotse, faiss...) or a module
    that brings one into a light path (``speechtok --help``, `tests/test_cli_help.py`), and its
    ``# lazy:`` comment says which."""
    found = over_package(unexplained_lazy_imports)
    assert not found, "function-level import without a `# lazy: REASON` comment:\n" + "\n".join(found)


@pytest.mark.parametrize("body, caught", [
    ("import torch", True),
    ("import torch  # lazy: torch takes seconds to import", False),
    ("# lazy: torch takes seconds to import\n    import torch", False),
    ("# lazy: torch and its audio library\n    import torch\n    import torchaudio", False),
    ("# lazy: torch\n    import torch\n    x = 1\n    import torchaudio", True),
    ("import torch  # lazy:", True),
    ("from speechtok.trainers.llm import (\n        build_llm,  # lazy: brings transformers\n    )", False),
    ("try:\n        import faiss  # lazy: faiss is heavy\n    except ImportError:\n        pass", False),
])
def test_unexplained_lazy_import_is_caught(body: str, caught: bool, tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(f"import os\n\n\ndef f():\n    {body}\n")
    assert bool(unexplained_lazy_imports(src, "speechtok/m.py")) == caught
