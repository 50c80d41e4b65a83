"""`speechtok --help` builds every subcommand's parser without the heavy libraries: each command
imports torch, lhotse, faiss or transformers in the function that runs it, not at module level."""

from __future__ import annotations

import subprocess
import sys

#: Packages that take seconds (torch, lhotse) or most of a second (faiss, transformers) to import.
HEAVY = ("torch", "lhotse", "faiss", "transformers")

_PROBE = f"""
import sys
from speechtok import cli
parser = cli.build_parser()
parser.format_help()
assert [a for a in parser._actions if a.dest == "command"][0].choices.keys() >= {{"ingest", "run", "demo", "units"}}
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_help_imports_no_heavy_library() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"`speechtok --help` imports {out.stdout.strip()}"


def test_the_probe_sees_a_heavy_import() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys; import speechtok.manifests.ingest; "
                          f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert "lhotse" in out.stdout and "torch" in out.stdout
