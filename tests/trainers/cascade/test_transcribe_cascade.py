"""`speechtok transcribe` with a cascade run: its dev and test WER again, and a separate test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cascade_recipe import TINY, _tiny_corpus

from speechtok.models.nbest import Hypothesis, NBestList, write_jsonl
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.hyps import read_hyps
from speechtok.trainers.transcribe import transcribe

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.slow]  # trains a tiny text LM and GER: ~1-3 min on 2 cores


def test_cascade_run_transcribes_its_splits_to_its_wers(speechocean_dir: Path, whisper_ct2_dir: Path,
                                                        tmp_path: Path) -> None:
    from speechtok.trainers.cascade import run_recipe

    kaldi = tmp_path / "kaldi"
    ids = _tiny_corpus(speechocean_dir, kaldi)
    refs = {u.id: u.text or "" for u in read_kaldi_dir(kaldi)}
    lists = []
    for uid in ids:  # cached n-best lists: the run and transcribe read them instead of decoding
        ref = refs[uid].lower()
        texts = [ref.replace("e", "a", 1), ref, ref + " uh"]
        hyps = tuple(Hypothesis(text=t, rank=r, am_score=-1.0 - r, am_score_norm=-0.3 - r, num_tokens=4)
                     for r, t in enumerate(texts))
        lists.append(NBestList(id=uid, source="whisper", hyps=hyps, reference=refs[uid]))
    write_jsonl(tmp_path / "cache.jsonl", lists)
    run = tmp_path / "run"
    sets = {"data.kaldi_dir": str(kaldi), "nbest.cache": str(tmp_path / "cache.jsonl"),
            "rescoring.ngram_baseline": False, "data.test": str(kaldi)}
    assert run_recipe(TINY, run, sets) == 0
    res = json.loads((run / "results.json").read_text())
    dev, test = res["results"]["dev"], res["results"]["test"]
    best = min(("rescored_lm", "ger"), key=lambda s: dev[s])
    for split, want in (("dev", dev[best]), ("test", test[best])):
        s = transcribe(run, kaldi, tmp_path / split, split=split)
        assert s["family"] == "cascade" and s["utts"] == 2
        assert s["wer"] == pytest.approx(want, abs=1e-12)
    # the separate test set (here the whole tiny corpus) is decoded with the dev-chosen system
    assert res["test_set"]["utts"] == 6
    recs = read_hyps(run / "test_hyps.jsonl")
    assert sorted(r["id"] for r in recs) == sorted(ids)
    assert all("am_1best" in r["scores"] for r in recs)
