"""Small text LM training (on the shared loop: metrics.jsonl, resume), HF and 3-gram LM scoring, GER
fine-tuning (full and LoRA) and inference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from speechtok.errors import ConfigError
from speechtok.models.nbest import Hypothesis, NBestList
from speechtok.trainers.cascade import text_lm
from speechtok.trainers.cascade.ger import GERConfig, GERModel, make_examples, train_ger
from speechtok.trainers.cascade.hyporadise import hp_record
from speechtok.trainers.cascade.lm_scoring import HFCausalLMScorer, NGramScorer, score_nbests
from speechtok.trainers.cascade.text_lm import TextLMConfig, train_text_lm
from speechtok.trainers.data import BatchingConfig
from speechtok.trainers.llm import LLMConfig
from speechtok.trainers.loop import LoopConfig, read_metrics

SENTS = ["zero three five one", "three two two seven", "we call it bear", "the cat sat on the mat",
         "good job", "now for the party", "i am in the glass", "elephants tie goose"]
TINY = TextLMConfig(vocab_size=300,
                    llm=LLMConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_positions=128),
                    train=LoopConfig(max_steps=30, lr=1e-2, min_lr=1e-3, warmup_steps=3, weight_decay=0.01,
                                     beta2=0.98, log_every=1, device="cpu"),
                    batching=BatchingConfig(max_batch=8))
TOKENIZER_EXTRA = ["best: others: answer: 0351 3 2 2 7"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tlm")
    rep = train_text_lm(SENTS * 4, out, TINY, tokenizer_texts=TOKENIZER_EXTRA)
    assert rep.final_loss < rep.first_loss  # it learns
    return out


def test_text_lm_saves_a_loadable_hf_checkpoint(tiny_lm: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (tiny_lm / "config.json").exists() and (tiny_lm / "model.safetensors").exists()
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    assert model.config.model_type == "llama"


class _Killed(Exception):
    pass


def test_interrupted_text_lm_resumes_to_the_same_weights_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = replace(TINY, train=replace(TINY.train, max_steps=12, checkpoint_every=4))
    full = tmp_path / "full"
    rep_full = train_text_lm(SENTS * 4, full, cfg, tokenizer_texts=TOKENIZER_EXTRA)
    killed = tmp_path / "killed"
    calls: list[int] = []
    loss = text_lm.causal_lm_loss

    def dies_in_step_10(model: Any, batch: Any) -> Any:
        calls.append(1)
        if len(calls) > 10:
            raise _Killed
        return loss(model, batch)

    monkeypatch.setattr(text_lm, "causal_lm_loss", dies_in_step_10)
    with pytest.raises(_Killed):
        train_text_lm(SENTS * 4, killed, cfg, tokenizer_texts=TOKENIZER_EXTRA)
    assert sorted(p.name for p in (killed / "checkpoints").glob("step_*")) == ["step_0000004", "step_0000008"]
    assert not (killed / "model.safetensors").exists()
    resumed_calls: list[int] = []

    def counted(model: Any, batch: Any) -> Any:
        resumed_calls.append(1)
        return loss(model, batch)

    monkeypatch.setattr(text_lm, "causal_lm_loss", counted)
    rep_resumed = train_text_lm(SENTS * 4, killed, cfg, tokenizer_texts=TOKENIZER_EXTRA)
    assert len(resumed_calls) == 4  # steps 8..11 only: it went on from step_0000008, not from scratch
    assert '{"start": 8}' in (killed / "metrics.jsonl").read_text().splitlines()
    # the log reads as one run, equal to the uninterrupted one (one record per step, log_every=1)
    logged = read_metrics(killed)
    assert logged == read_metrics(full) and [r["step"] for r in logged] == list(range(12))
    assert (rep_resumed.first_loss, rep_resumed.final_loss) == (rep_full.first_loss, rep_full.final_loss)
    a, b = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # bit-identical on CPU
    assert (full / "tokenizer.json").read_text() == (killed / "tokenizer.json").read_text()


def test_text_lm_config_names_the_bad_field() -> None:
    with pytest.raises(ConfigError, match="text_lm.vocab_size"):
        replace(TINY, vocab_size=100).validate()
    with pytest.raises(ConfigError, match="text_lm.llm.mode"):
        replace(TINY, llm=replace(TINY.llm, mode="lora")).validate()


def test_hf_scorer_prefers_training_text_and_batches_consistently(tiny_lm: Path) -> None:
    texts = ["We call it bear.", "bear it we call", "three two two seven", "seven two three two", ""]
    batched = HFCausalLMScorer(tiny_lm, batch_size=8).score(texts)
    single = HFCausalLMScorer(tiny_lm, batch_size=1).score(texts)
    for a, b in zip(batched, single, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
        assert a.num_tokens == b.num_tokens
    assert batched[0].logprob > batched[1].logprob
    assert batched[2].logprob > batched[3].logprob
    assert batched[4].num_tokens == 1  # only </s>
    assert all(s.logprob < 0 for s in batched)


def test_score_nbests_aligns_scores_with_hypotheses(tiny_lm: Path) -> None:
    hyps = tuple(Hypothesis(text=t, rank=i, am_score=-1.0, am_score_norm=-1.0, num_tokens=1)
                 for i, t in enumerate(["good job", "Good job!", "goo job"]))
    nbs = [NBestList(id="a", source="t", hyps=hyps), NBestList(id="b", source="t", hyps=hyps[:1])]
    scores = score_nbests(HFCausalLMScorer(tiny_lm), nbs)
    assert [len(s) for s in scores] == [3, 1]
    assert scores[0][0] == scores[0][1]  # same normalised text, same score


def test_ngram_scorer_prefers_fluent_english() -> None:
    s = NGramScorer()
    good, bad, oov = s.score(["the cat sat on the mat", "mat the on sat cat the", "the qqqzzx sat"])
    assert good.logprob > bad.logprob
    assert good.num_tokens == 7
    assert oov.logprob < 0
    with pytest.raises(ConfigError, match="oov_logprob"):
        NGramScorer(oov_logprob=1.0)


def _records() -> list[dict[str, object]]:
    recs = []
    for i, ref in enumerate(SENTS):
        wrong = ref.replace("three", "3").replace("two", "2").replace("bear", "bill")
        hyps = tuple(Hypothesis(text=t, rank=r, am_score=-1.0 - r, am_score_norm=-0.2, num_tokens=4)
                     for r, t in enumerate([wrong, ref, wrong + " uh"]))
        recs.append(hp_record(NBestList(id=str(i), source="t", hyps=hyps, reference=ref), num_hypotheses=3))
    return recs


def test_ger_examples_mask_the_prompt(tiny_lm: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    ids, labels = make_examples(_records()[:1], tok, prompt="short", train_on_inputs=False, max_length=256)[0]
    n_ans = len(tok("zero three five one", add_special_tokens=False)["input_ids"]) + 1
    assert len(ids) == len(labels)
    assert labels[-n_ans:] == ids[-n_ans:] and labels[-1] == 2
    assert set(labels[:-n_ans]) == {-100}


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_ger_trains_and_corrects_in_batches(tiny_lm: Path, tmp_path: Path, mode: str) -> None:
    recs = _records()
    cfg = GERConfig(llm=LLMConfig(path=str(tiny_lm), mode=mode, lora_dropout=0.05), max_new_tokens=12,
                    train=LoopConfig(max_steps=25, lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.0,
                                     beta2=0.98, log_every=1, device="cpu"),
                    batching=BatchingConfig(max_batch=8))
    rep = train_ger(recs, tmp_path / "ger", cfg)
    assert rep.final_loss < rep.first_loss
    assert (tmp_path / "ger" / "model.safetensors").exists()
    assert [r["step"] for r in read_metrics(tmp_path / "ger")] == list(range(25))
    if mode == "lora":
        assert (tmp_path / "ger" / "adapter" / "adapter_config.json").exists()
    model = GERModel(tmp_path / "ger")
    batched = model.correct(recs, batch_size=8, max_new_tokens=12)
    single = [model.correct([r], batch_size=1, max_new_tokens=12)[0] for r in recs[:3]]
    assert len(batched) == len(recs) and all(isinstance(t, str) for t in batched)
    assert batched[:3] == single


def test_ger_config_validation(tiny_lm: Path) -> None:
    with pytest.raises(ConfigError, match="ger.llm.mode"):
        GERConfig(llm=LLMConfig(path=str(tiny_lm), mode="frozen")).validate()
    with pytest.raises(ConfigError, match="llm.path"):
        GERConfig(llm=LLMConfig(path=str(tiny_lm / "nope"))).validate()
    with pytest.raises(ConfigError, match="ger.llm.path"):
        train_ger(_records(), tiny_lm / "ger", GERConfig())
