"""Small text LM training, HF and 3-gram LM scoring, GER fine-tuning (full and LoRA) and inference."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechtok.errors import ConfigError
from speechtok.trainers.cascade.ger import GERConfig, GERModel, make_examples, train_ger
from speechtok.trainers.cascade.hyporadise import hp_record
from speechtok.trainers.cascade.lm_scoring import HFCausalLMScorer, NGramScorer, score_nbests
from speechtok.trainers.cascade.nbest import Hypothesis, NBestList
from speechtok.trainers.cascade.text_lm import TextLMConfig, train_text_lm

SENTS = ["zero three five one", "three two two seven", "we call it bear", "the cat sat on the mat",
         "good job", "now for the party", "i am in the glass", "elephants tie goose"]
TINY = TextLMConfig(vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                    max_length=128, steps=30, batch_size=8, learning_rate=1e-2, warmup_steps=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tlm")
    rep = train_text_lm(SENTS * 4, out, TINY, tokenizer_texts=["best: others: answer: 0351 3 2 2 7"])
    assert rep.final_loss < rep.first_loss  # it learns
    return out


def test_text_lm_saves_a_loadable_hf_checkpoint(tiny_lm: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (tiny_lm / "config.json").exists() and (tiny_lm / "model.safetensors").exists()
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    assert model.config.model_type == "llama"


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
    cfg = GERConfig(base_model=tiny_lm, mode=mode, steps=25, batch_size=8, learning_rate=1e-2,
                    warmup_steps=2, max_new_tokens=12)
    rep = train_ger(recs, tmp_path / "ger", cfg)
    assert rep.final_loss < rep.first_loss
    assert (tmp_path / "ger" / "model.safetensors").exists()
    if mode == "lora":
        assert (tmp_path / "ger" / "adapter" / "adapter_config.json").exists()
    model = GERModel(tmp_path / "ger")
    batched = model.correct(recs, batch_size=8, max_new_tokens=12)
    single = [model.correct([r], batch_size=1, max_new_tokens=12)[0] for r in recs[:3]]
    assert len(batched) == len(recs) and all(isinstance(t, str) for t in batched)
    assert batched[:3] == single


def test_ger_config_validation(tiny_lm: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        GERConfig(base_model=tiny_lm, mode="qlora").validate()
    with pytest.raises(ConfigError, match="base_model"):
        GERConfig(base_model=tiny_lm / "nope").validate()
