"""Tables generated from `bench/results/latest.json`; no figure is typed by hand.

- `bench/README.md`, between the FIGURES markers: every figure with value, unit, goal, status
  (fresh / stale and why), threads, wall and CPU seconds, load average, date and commit; then
  the newest run of each benchmark.
- `docs/sections/*.md`: each block
  ``<!-- BENCH:BEGIN kmeans.speedup_* fbank.speedup_vs_lhotse_store -->`` ...
  ``<!-- BENCH:END -->`` is refilled with a short table of the figures its patterns (fnmatch)
  name, so the README (assembled from the sections) quotes only generated numbers.
- A block ``<!-- BENCH:GRID compare.*.test_wer compare.*.cer -->`` ... ``<!-- BENCH:END -->`` is
  refilled with one row per value of ``*`` (e.g. ``text``, ``latent.whisper_decoder``) and one
  column per pattern: the side-by-side tables (families, adapters) without a typed number.

Run: `.venv/bin/python -m bench.report` (`python -m bench` runs it after the benchmarks).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

from bench import provenance as prov
from bench.check import peer_problem, staleness
from bench.common import guess_unit
from bench.goals import GOALS

README = prov.BENCH_DIR / "README.md"
SECTIONS = prov.ROOT / "docs" / "sections"
BEGIN, END = "<!-- FIGURES:BEGIN -->", "<!-- FIGURES:END -->"
BLOCK = re.compile(r"(<!-- BENCH:BEGIN ([^>]*?) -->\n)(.*?)(<!-- BENCH:END -->)", re.S)
GRID = re.compile(r"(<!-- BENCH:GRID ([^>]*?) -->\n)(.*?)(<!-- BENCH:END -->)", re.S)


def fmt(v: float) -> str:
    """A value to 4 significant digits, without exponent for ordinary magnitudes."""
    if v == 0 or 1e-3 <= abs(v) < 1e7:
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return f"{v:.3e}"


def _goal(name: str, e: dict[str, Any]) -> str:
    g = GOALS.get(name)
    if g is None:
        return ""
    return f"{g}: {'met' if g.met(float(e['value'])) else '**MISSED**'}"


def _status(name: str, data: dict[str, Any]) -> str:
    why = staleness(name, data) or peer_problem(name, data)
    return f"STALE: {why}" if why else "fresh"


def _cpus(e: dict[str, Any]) -> str:
    parts = str(e.get("machine", "")).split()
    return parts[parts.index("cpu") - 1] if "cpu" in parts[1:] else "?"


def _note(e: dict[str, Any]) -> str:
    return str(e.get("note", "")).replace("|", "\\|").replace("\n", " ")


def _measured(e: dict[str, Any], stale: bool) -> str:
    """When figure entry `e` was measured: date, load and CPUs, and a stale mark."""
    load = (e.get("loadavg") or [None])[0]
    busy = f", load {load:g} on {_cpus(e)} cpu" if load is not None else ""
    return f"{str(e.get('date', ''))[:10]}{busy}{' (stale)' if stale else ''}"


def figures_table(data: dict[str, Any], names: list[str], full: bool) -> str:
    """Markdown table of `names`; `full` adds the provenance columns."""
    if full:
        rows = ["| figure | value | unit | goal | status | threads | wall s | CPU s | load 1m | "
                "date | commit | note |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    else:
        rows = ["| figure | value | unit | goal | measured | note |", "|---|---|---|---|---|---|"]
    for n in names:
        e = data["figures"][n]
        v = fmt(float(e["value"]))
        if full:
            load = (e.get("loadavg") or [""])[0]
            rows.append(f"| `{n}` | {v} | {e.get('unit') or guess_unit(n)} | {_goal(n, e)} | {_status(n, data)} | "
                        f"{e.get('threads', '')} | {e.get('wall_s', '')} | {e.get('cpu_s', '')} | "
                        f"{load} | {e.get('date', '')} | {str(e.get('commit', ''))[:12]} | {_note(e)} |")
        else:
            when = _measured(e, _status(n, data) != "fresh")
            rows.append(f"| `{n}` | {v} | {e.get('unit') or guess_unit(n)} | {_goal(n, e)} | {when} | {_note(e)} |")
    return "\n".join(rows)


def grid_table(data: dict[str, Any], patterns: list[str]) -> str:
    """Markdown table with one row per value of the ``*`` in `patterns` (each has exactly one)
    and one column per pattern; a cell is the figure's value, ``-`` where it was not measured.
    The last column says when the row's figures were measured (load, stale)."""
    for pat in patterns:
        if pat.count("*") != 1:
            raise ValueError(f"BENCH:GRID pattern {pat!r} must contain exactly one '*'")
    regexes = [re.compile("^" + re.escape(p).replace(r"\*", "(.+)") + "$") for p in patterns]
    cells: dict[str, dict[int, str]] = {}
    for n in sorted(data["figures"]):
        for i, rx in enumerate(regexes):
            m = rx.match(n)
            if m:
                cells.setdefault(m.group(1), {})[i] = n
    if not cells:
        return "(not measured yet)"
    heads = [p.replace("*", "…") for p in patterns]
    rows = ["| | " + " | ".join(f"`{h}`" for h in heads) + " | measured |",
            "|---|" + "---|" * len(patterns) + "---|"]
    for row, found in cells.items():
        vals = [fmt(float(data["figures"][found[i]]["value"])) if i in found else "-"
                for i in range(len(patterns))]
        names = list(found.values())
        when = _measured(data["figures"][names[0]], any(_status(n, data) != "fresh" for n in names))
        rows.append(f"| {row} | " + " | ".join(vals) + f" | {when} |")
    return "\n".join(rows)


def bench_readme_table(data: dict[str, Any]) -> str:
    """The whole generated part of `bench/README.md`."""
    names = sorted(data["figures"])
    out = [figures_table(data, names, full=True), "", "Newest run of each benchmark:", "",
           "| bench | started | finished | status | commit | load at start |", "|---|---|---|---|---|---|"]
    for b, r in sorted(data["runs"].items()):
        out.append(f"| {b} | {r.get('started')} | {r.get('finished') or ''} | {r.get('status')} | "
                   f"{str(r.get('commit', ''))[:12]} | {r.get('loadavg')} |")
    machines = sorted({str(e.get("machine")) for e in data["figures"].values() if e.get("machine")})
    out += ["", f"Machines: {'; '.join(machines)}.",
            "Generated by `python -m bench.report` from `results/latest.json`; do not edit."]
    return "\n".join(out)


def write_bench_readme(data: dict[str, Any] | None = None, path: Path | None = None) -> None:
    """Regenerates the FIGURES block of `bench/README.md` (atomically)."""
    data = data if data is not None else prov.load()
    path = path or README
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN not in text:
        text += "\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    prov.atomic_write_text(path, head + BEGIN + "\n" + bench_readme_table(data) + "\n" + END + tail)


def fill_blocks(text: str, data: dict[str, Any]) -> str:
    """`text` with every BENCH block refilled from `data`."""
    names = sorted(data["figures"])

    def repl(m: re.Match[str]) -> str:
        chosen: list[str] = []
        for pat in m.group(2).split():
            chosen += [n for n in fnmatch.filter(names, pat) if n not in chosen]
        body = figures_table(data, chosen, full=False) if chosen else "(not measured yet)"
        return f"{m.group(1)}{body}\n{m.group(4)}"

    def grid(m: re.Match[str]) -> str:
        return f"{m.group(1)}{grid_table(data, m.group(2).split())}\n{m.group(4)}"

    return GRID.sub(grid, BLOCK.sub(repl, text))


def write_sections(data: dict[str, Any] | None = None, folder: Path | None = None) -> list[Path]:
    """Refills the BENCH blocks of `docs/sections/*.md`; returns the files that changed."""
    data = data if data is not None else prov.load()
    changed = []
    for p in sorted((folder or SECTIONS).glob("*.md")):
        text = p.read_text()
        new = fill_blocks(text, data)
        if new != text:
            prov.atomic_write_text(p, new)
            changed.append(p)
    return changed


def main() -> int:
    data = prov.load()
    write_bench_readme(data)
    for p in write_sections(data):
        print(f"  regenerated {p.relative_to(prov.ROOT)}")
    print(f"  regenerated {README.relative_to(prov.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
