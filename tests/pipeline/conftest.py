"""Fixtures of the runner and stage tests: in process, a worker pool, a corpus and a reference run per
test module; for the tests that run ``speechtok run`` in subprocesses (crash safety, failure
classes), one corpus + recipe per test module, and the reference output's snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_runner_util import QUIET, CliSetup, cli_run, make_corpus, small_recipe, snapshot, write_recipe

from speechtok.pipeline.executors.local import LocalPoolExecutor
from speechtok.pipeline.runner import run


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


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPoolExecutor]:
    """One worker process for the whole module (workers start once; outputs bit-exact)."""
    ex = LocalPoolExecutor(workers=1)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's 10-cut tone corpus (`make_corpus`)."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), n=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus: Path, pool: LocalPoolExecutor) -> Path:
    """An uninterrupted in-process run of `small_recipe(corpus)`."""
    out = tmp_path_factory.mktemp("ref") / "out"
    run(small_recipe(corpus), out, QUIET, executor=pool)
    return out
