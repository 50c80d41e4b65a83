"""Whether the code a figure measured is, up to moves, renames and formatting, the code now.

A figure records the files it depends on (`code`), a hash of their contents (`code_sha`) and
the commit it was measured at. When the hash no longer matches, `bench.check` asks this module
before calling the figure stale:

1. the measured sources are read back from git (`COMMIT:path`; a ``-dirty`` commit counts only
   when the files read back hash to the recorded `code_sha`, i.e. the dirt was elsewhere);
2. each file is followed to its current path through git's rename detection
   (``git diff -M COMMIT``);
3. both versions are parsed and compared as syntax trees after dropping docstrings and the
   imports of the project's own modules (``speechtok``, ``bench``: where a name is imported
   from is not behaviour), and after rewriting the old paths and dotted module names in string
   constants to the new ones.

Equal trees mean the measured code and today's differ only in layout, formatting, comments,
docstrings or import paths, and the figure stays fresh ("moved"). Anything else, a file git
cannot read back, or a file that vanished, keeps it stale.
"""

from __future__ import annotations

import ast
import subprocess
from functools import lru_cache

from bench import provenance as prov

PROJECT_MODULES = ("speechtok", "bench")


def _git(*args: str) -> bytes | None:
    try:
        return subprocess.run(["git", *args], cwd=prov.ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


@lru_cache(maxsize=64)
def renames(commit: str) -> dict[str, str]:
    """Old path -> current path for every file git sees renamed between `commit` and the
    working tree (empty when git cannot tell)."""
    out = _git("diff", "-M", "--name-status", "-z", commit, "--")
    if out is None:
        return {}
    parts = out.decode().split("\0")
    found: dict[str, str] = {}
    i = 0
    while i < len(parts) and parts[i]:
        status = parts[i]
        if status.startswith(("R", "C")):
            found[parts[i + 1]] = parts[i + 2]
            i += 3
        else:
            i += 2
    return found


def _module(path: str) -> str | None:
    if not path.endswith(".py"):
        return None
    mod = path[:-3].replace("/", ".")
    return mod.removesuffix(".__init__")


def _is_project(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in PROJECT_MODULES


class _Normalise(ast.NodeTransformer):
    def __init__(self, subs: list[tuple[str, str]]) -> None:
        self.subs = subs

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        return body

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = self._body(node.body) or [ast.Pass()]
        return super().generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        return None if node.level or _is_project(node.module) else node

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        node.names = [a for a in node.names if not _is_project(a.name)]
        return node if node.names else None

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            v = node.value
            for old, new in self.subs:
                v = v.replace(old, new)
            node.value = v
        return node


def normalised(src: bytes, subs: list[tuple[str, str]] | None = None) -> str:
    """The syntax tree of `src` without docstrings and project imports, with `subs`
    (old, new) applied to string constants, as text."""
    tree = _Normalise(subs or []).visit(ast.parse(src))
    return ast.dump(ast.fix_missing_locations(tree))


@lru_cache(maxsize=1024)
def _show(commit: str, path: str) -> bytes:
    data = _git("show", f"{commit}:{path}")
    return b"<missing>" if data is None else data


def moved_only(code: tuple[str, ...], code_sha: str, commit: str) -> bool:
    """True when the files `code` as measured at `commit` (verified against `code_sha`) equal
    today's files, followed through renames, up to layout, formatting, docstrings and project
    import paths."""
    base = commit.removesuffix("-dirty")
    if not base or _git("cat-file", "-e", f"{base}^{{commit}}") is None:
        return False
    measured = {p: _show(base, p) for p in code}
    if prov.files_sha(measured) != code_sha:
        return False  # the measured files were not the commit's (uncommitted edits)
    moves = renames(base)
    subs: list[tuple[str, str]] = []
    for old, new in moves.items():
        subs.append((old, new))
        mo, mn = _module(old), _module(new)
        if mo and mn:
            subs.append((mo, mn))
    subs.sort(key=lambda s: -len(s[0]))
    for old_path, src in measured.items():
        if src == b"<missing>":
            return False
        now = prov.ROOT / moves.get(old_path, old_path)
        if not now.is_file():
            return False
        try:
            if normalised(src, subs) != normalised(now.read_bytes()):
                return False
        except SyntaxError:
            return False
    return True
