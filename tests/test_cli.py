"""`speechtok.cli.main`: an `-o` that cannot be a directory is refused up front, for every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechtok.cli import main
from speechtok.paths import ROOT


@pytest.mark.parametrize("argv", [
    ["train", "token", str(ROOT / "recipes" / "token_tiny.yaml"), "--set", "data.shards=SHARDS"],
    ["transcribe", "RUN", "SHARDS"],
    ["units", "report", "SHARDS"],
    ["export", "SHARDS", "--to", "parquet"],
])
@pytest.mark.parametrize("below", [False, True])
def test_output_that_is_a_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str], below: bool) -> None:
    # `-o FILE/sub` used to end in "FileExistsError: [Errno 17] File exists" from a mkdir deep inside
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    out = f / "sub" if below else f
    argv = [str(tmp_path / a) if a in ("RUN", "SHARDS") else a for a in argv]
    assert main([*argv, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "is not a directory and cannot be created as one" in err
    assert f.read_text() == "keep me"
