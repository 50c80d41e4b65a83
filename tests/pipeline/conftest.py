"""Fixtures of the runner tests that run ``speechtok run`` in subprocesses (crash safety,
failure classes): one corpus + recipe per test module, and the reference output's snapshot."""

from __future__ import annotations

import pytest
from test_runner_util import CliSetup, cli_run, make_corpus, snapshot, write_recipe


@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory: pytest.TempPathFactory) -> CliSetup:
    root = tmp_path_factory.mktemp("cli")
    corpus = make_corpus(root / "corpus", n=10)
    return CliSetup(root=root, corpus=corpus, recipe=write_recipe(root / "recipe.yaml", corpus))


@pytest.fixture(scope="module")
def cli_reference(cli_setup: CliSetup) -> dict[str, str]:
    """`snapshot` of an uninterrupted ``--executor inline`` run of the module's recipe."""
    out = cli_setup.root / "reference"
    proc = cli_run(cli_setup.recipe, out)
    assert proc.returncode == 0, proc.stderr
    return snapshot(out)
