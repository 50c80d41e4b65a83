"""Clone isolation (issue 14): two clones set up one after the other against one venv root each
run their own code (nothing clone-specific goes into the shared venv)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_venv() -> Path:
    """The real shared venv: the one torch is installed in."""
    import torch

    return Path(torch.__file__).resolve().parents[4]  # VENV/lib/pythonX.Y/site-packages/torch/__init__.py


def torch_site() -> str:
    """The shared venv's site-packages (where a .pth would go)."""
    import torch

    return str(Path(torch.__file__).resolve().parents[1])


def _lock_hash(clone: Path) -> str:
    """What the Makefile computes: sha256 of the two locks concatenated, first 16 hex digits."""
    data = b"".join((clone / n).read_bytes() for n in ("requirements.lock", "requirements-weights.lock")
                    if (clone / n).exists())
    return hashlib.sha256(data).hexdigest()[:16]


def _run(cmd: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_two_clones_one_venv_each_run_their_own_code(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout (nothing to clone)")
    venv = _shared_venv()
    if not (venv / ".complete").exists():
        pytest.skip(f"{venv} is not a venv made by `make setup` (no .complete)")
    venv_root = tmp_path / "venvs"
    venv_root.mkdir()
    clones = {}
    for name in ("A", "B"):
        clone = tmp_path / f"clone{name}"
        _run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path)
        init = clone / "speechtok" / "__init__.py"
        init.write_text(init.read_text().replace('__version__ = "', f'__version__ = "clone{name}-'))
        clones[name] = clone
    # one venv root for both, whose lock entry is the real shared venv (nothing gets installed)
    (venv_root / _lock_hash(clones["A"])).symlink_to(venv, target_is_directory=True)
    site = Path(torch_site())
    shared_before = sorted(p.name for p in site.glob("*.pth"))
    for name in ("A", "B"):  # A first, then B: B's set-up must not redirect A
        _run(["make", "setup", f"VENV_ROOT={venv_root}"], clones[name])
    assert sorted(p.name for p in site.glob("*.pth")) == shared_before  # nothing added to the shared venv
    for name, clone in clones.items():
        py = clone / ".venv" / "bin" / "python"
        where = _run([str(py), "-c", "import speechtok; print(speechtok.__file__, speechtok.__version__)"], tmp_path)
        path, version = where.split()
        assert Path(path).resolve().is_relative_to(clone.resolve()) and version.startswith(f"clone{name}-"), where
        out = _run([str(clone / ".venv" / "bin" / "speechtok"), "--version"], tmp_path)
        assert f"clone{name}-" in out, out
        out = _run([str(py), "-m", "speechtok", "--version"], tmp_path)
        assert f"clone{name}-" in out, out
    assert sys.executable  # the test's own interpreter is untouched by the set-ups
