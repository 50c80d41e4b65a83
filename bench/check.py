"""`python -m bench --check`: which figures are stale, unpeered or missing.

A figure is stale when it has no provenance (old format), when the code it measured (its
benchmark file plus the files it declared) changed since — other than by moves, renames,
formatting, docstrings or project import paths, which `bench.code_equiv` checks against git —
or when a newer run of its benchmark did not re-measure it. A comparison figure fails when it
names no peer, or when a peer is
missing, stale, or from another run than the figure itself.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Any

from bench import code_equiv
from bench import provenance as prov
from bench.goals import REQUIRED, needs_peer


@lru_cache(maxsize=256)
def _sha(files: tuple[str, ...]) -> str:
    return prov.code_sha(list(files))


@lru_cache(maxsize=256)
def _moved_only(code: tuple[str, ...], sha: str, commit: str) -> bool:
    return code_equiv.moved_only(code, sha, commit)


def staleness(name: str, data: dict[str, Any]) -> str | None:
    """Why figure `name` is stale, or None when it is fresh."""
    e = data["figures"][name]
    if e.get("legacy") or "run_id" not in e:
        return "old format without provenance: rerun its benchmark"
    code = tuple(e.get("code", ()))
    if _sha(code) != e.get("code_sha") and not _moved_only(code, str(e.get("code_sha", "")),
                                                           str(e.get("commit", ""))):
        return f"code changed since measured ({', '.join(e.get('code', ()))})"
    run = data["runs"].get(e["bench"])
    if run is not None and run.get("run_id") != e["run_id"]:
        return (f"not re-measured by the newest run of bench {e['bench']} "
                f"(started {run.get('started')}, {run.get('status')})")
    return None


def peer_problem(name: str, data: dict[str, Any]) -> str | None:
    """Why figure `name`'s peers do not back it, or None."""
    e = data["figures"][name]
    peers = e.get("peers") or []
    if needs_peer(name) and not peers and not e.get("legacy"):
        return "compares with a peer or floor but names no peer figure measured in its run"
    for p in peers:
        pe = data["figures"].get(p)
        if pe is None:
            return f"peer {p} was not run"
        if pe.get("run_id") != e.get("run_id"):
            return f"peer {p} comes from another run ({pe.get('run_id')})"
        why = staleness(p, data)
        if why:
            return f"peer {p} is stale: {why}"
    return None


def problems(data: dict[str, Any] | None = None) -> list[str]:
    """Every reason `--check` fails, one line each (empty when all figures are fresh)."""
    data = data if data is not None else prov.load()
    out = []
    for name in sorted(data["figures"]):
        why = staleness(name, data) or peer_problem(name, data)
        if why:
            out.append(f"{name}: {why}")
    names = list(data["figures"])
    for pat in REQUIRED:
        if not fnmatch.filter(names, pat):
            out.append(f"{pat}: required figure missing; run `make bench`")
    return out


def main() -> int:
    """Prints the problems; 1 when there are any."""
    found = problems()
    for line in found:
        print(f"STALE {line}")
    data = prov.load()
    print(f"{len(data['figures']) - sum(1 for f in found if not f.endswith('`make bench`'))} of "
          f"{len(data['figures'])} figures fresh; {len(found)} problem(s)")
    return 1 if found else 0
