"""A corpus that gives no usable cut stops the run with an `InputError` naming the corpus, the
quarantine counts and the quarantine file (it failed later with "has no group 'feats.fbank'"); so
does a fit whose input group has no frame because a stage quarantined every cut."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
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


def test_fit_on_a_group_whose_every_cut_was_quarantined_says_why(tmp_path: Path) -> None:
    """Every cut is too short for one fbank frame: k-means said only "frame source: has no frames"."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):  # 40 samples at 16 kHz: ingest keeps them, fbank gives 0 frames
        sf.write(corpus / f"s{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(40)).astype(np.float32), 16000)
        (corpus / f"s{i}.txt").write_text("x")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"^feats\.fbank: has no frames to fit stage 'km' on: all 4 cuts of it were "
                       r"quarantined or empty upstream \(fbank too_short x4\); see ") as err:
        run(small_recipe(corpus), out, QUIET)
    assert str(out / "quarantine.jsonl") in str(err.value)
    records = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["stage"], r["reason"]) for r in records) == [
        (f"s{i}", "fbank", "too_short") for i in range(4)]
