"""A corpus that gives no usable cut stops the run with an `InputError` naming the corpus, the
quarantine counts and the quarantine file (it failed later with "has no group 'feats.fbank'")."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runner_util import QUIET, small_recipe

from speechtok.errors import InputError
from speechtok.pipeline.runner import run


def test_corpus_with_no_usable_cut_is_an_input_error(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.wav").write_text("not audio")
    (corpus / "b.wav").write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"gave 0 usable cuts \(2 quarantined: empty x1, unreadable x1\)") as err:
        run(small_recipe(corpus), out, QUIET)
    assert str(out / "ingest" / "quarantine.jsonl") in str(err.value)
    assert (out / "ingest" / "quarantine.jsonl").read_text().count('"reason"') == 2
