"""The ctc_align stage: a latent run's CTC encoder force-aligns each cut's words; the group is
read back by ShardDataset and by the token trainer's interleaving data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError
from speechtok.manifests.tone_corpus import write_tone_corpus
from speechtok.paths import ROOT
from speechtok.pipeline.recipe import recipe_from_dict
from speechtok.pipeline.runner import RunOptions, run
from speechtok.shards.reader import ShardDataset

INLINE = RunOptions(executor="inline", progress=False)


def _corpus(root: Path) -> Path:
    return write_tone_corpus(root, 12, stem="u", text=lambda i: "" if i == 5 else f"tone {'number ' * (i % 3)}{i}",
                             speakers=4)


def _recipe(corpus: Path, align_run: Path | None) -> object:
    stages: list[dict] = [{"type": "fbank", "name": "fbank", "config": {"num_mel_bins": 40}},
                          {"type": "kmeans_units", "name": "km", "input": "feats.fbank",
                           "config": {"k": 8, "iterations": 3, "frame_budget": 5000}}]
    if align_run is not None:
        stages.append({"type": "ctc_align", "name": "ctc", "input": "feats.fbank",
                       "config": {"run": str(align_run)}})
    return recipe_from_dict({"ingest": {"source": str(corpus), "sample_rate": 16000,
                                        "options": {"speaker_from": "top_dir"}},
                             "shards": {"cuts_per_shard": 5}, "stages": stages})


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from speechtok.trainers.latent import run_recipe

    tmp = tmp_path_factory.mktemp("align")
    corpus = _corpus(tmp / "corpus")
    out = tmp / "out"
    run(_recipe(corpus, None), out, INLINE)
    sets = {"data.shards": str(out), "data.feats": "feats.fbank", "data.frame_rate": 100.0,
            "data.split.train": 0.6, "stage1.max_steps": 4, "train.max_steps": 1, "train.eval_every": 0,
            "latent.eval_utts": 2, "latent.max_new_tokens": 4}
    assert run_recipe(ROOT / "recipes" / "latent_tiny.yaml", tmp / "latent", sets) == 0
    run(_recipe(corpus, tmp / "latent"), out, INLINE)  # fbank is skipped, ctc_align added
    return out, tmp / "latent"


def test_alignment_group_covers_every_cut(aligned: tuple[Path, Path]) -> None:
    out, _ = aligned
    ds = ShardDataset(out, groups=("cuts", "align.ctc"))
    assert len(ds) == 12 and ds.meta("align.ctc").kind == "align"
    for row in ds:
        words = row["align.ctc"]
        assert [w["word"] for w in words] == (row["text"] or "").split(), row["id"]
        ends = [w["start"] + w["duration"] for w in words]
        assert all(w["duration"] >= 0 for w in words)
        assert all(abs(ends[k] - words[k + 1]["start"]) < 1e-3 for k in range(len(words) - 1))  # contiguous
        assert not words or (words[0]["start"] >= 0 and ends[-1] <= row["duration"] + 1e-6)
    report = json.loads((out / "report.json").read_text())
    assert any(s["group"] == "align.ctc" for s in report["stages"])


def test_token_data_reads_the_alignment_group(aligned: tuple[Path, Path]) -> None:
    from speechtok.tokenizers.vocab import VocabSpec
    from speechtok.trainers.token import sequences as sq
    from speechtok.trainers.token.dataset import load_utterances
    from speechtok.trainers.token.recipe import TokenDataConfig

    out, _ = aligned
    want = {r["id"]: r["align.ctc"] for r in ShardDataset(out, groups=("cuts", "align.ctc"))}
    with pytest.raises(ConfigError, match="align group"):
        TokenDataConfig(shards=str(out), units="units.km", alignment="feats.fbank").validate()
    utts, vocab = load_utterances(TokenDataConfig(shards=str(out), units="units.km", alignment="align.ctc"))
    assert vocab == 8 and len(utts) == 12
    spec = VocabSpec(text_size=128, units={"km": vocab})
    for u in utts:
        assert [(w, s, d) for w, s, d in (u.words or [])] == [
            (w["word"], w["start"], w["duration"]) for w in (want[u.id] or [])]
        if u.words:  # interleaving uses them: every word lands in exactly one span
            seq, spans = sq.interleave_sequence(spec, "km", u.units, 100.0, u.words, lambda t: [ord(c) for c in t],
                                                mean_span_words=1.0, rng=np.random.default_rng(0))
            assert sum(sp.words[1] - sp.words[0] for sp in spans) == len(u.words)


def test_wrong_input_group_is_refused(aligned: tuple[Path, Path]) -> None:
    from speechtok.pipeline.stage_types import build_stage

    _, run_dir = aligned
    stage = build_stage({"type": "ctc_align", "name": "ctc", "input": "feats.other", "config": {"run": str(run_dir)}})
    with pytest.raises(ConfigError, match="trained on"):
        stage.model_checksum()
    with pytest.raises(ConfigError, match="features group"):
        build_stage({"type": "ctc_align", "name": "ctc", "input": "units.km", "config": {"run": str(run_dir)}})


def test_ctc_nbest_lists_from_the_same_run(aligned: tuple[Path, Path]) -> None:
    from speechtok.models.nbest import Utterance
    from speechtok.trainers.cascade.nbest_ctc import CTCNBest

    out, run_dir = aligned
    dec = CTCNBest(run_dir, out, beam_size=4, num_hypotheses=3)
    rows = list(ShardDataset(out, groups=("cuts",), columns=["text", "speaker"]))
    utts = [Utterance(id=r["id"], path=Path("unused.wav"), text=r["text"], speaker=r["speaker"] or "s")
            for r in rows[:4]] + [Utterance(id="not-in-shards", path=Path("x.wav"), text="x", speaker="s")]
    lists = list(dec.decode_utterances(utts))
    assert [nb.id for nb in lists] == [u.id for u in utts] and lists[-1].hyps == ()
    for nb in lists[:-1]:
        assert 1 <= len(nb.hyps) <= 3 and nb.source == "ctc"
        assert [h.rank for h in nb.hyps] == list(range(len(nb.hyps)))
        scores = [h.am_score for h in nb.hyps]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
        assert len({h.text for h in nb.hyps}) == len(nb.hyps)
