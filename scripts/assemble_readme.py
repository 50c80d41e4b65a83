"""Splices docs/sections/*.md into README.md between the SECTIONS markers (run after editing them)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["ingest", "runner", "shards", "features", "semantic", "acoustic", "trainers", "cascade", "compare",
         "handoff"]
BEGIN, END = "<!-- SECTIONS:BEGIN -->", "<!-- SECTIONS:END -->"


def main() -> None:
    parts = []
    for name in ORDER:
        path = ROOT / "docs" / "sections" / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip() + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + "\n\n" + "\n".join(parts) + "\n" + END + tail)


if __name__ == "__main__":
    main()
