"""A latent sequence longer than the LM's learned positions is left out and counted (training: dropped
from its batch; decoding: not decoded), or an `InputError` for a strict caller, never an IndexError
inside Whisper's position table; generation stops at the table's end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speechtok.errors import InputError
from speechtok.models.encoder import EncoderConfig, build_encoder
from speechtok.models.whisper_lm import WhisperDecoderLM, WhisperDecoderLMConfig
from speechtok.paths import ROOT
from speechtok.trainers.latent.adapters import FrameStack
from speechtok.trainers.latent.model import SpeechBatch, SpeechLLM
from speechtok.trainers.llm import LLMConfig, build_llm, position_limit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _whisper(positions: int = 16) -> WhisperDecoderLM:
    torch.manual_seed(0)
    cfg = WhisperDecoderLMConfig(no_audio_frames=4, vocab_size=50, d_model=16, decoder_layers=1,
                                 decoder_attention_heads=2, decoder_ffn_dim=32, encoder_layers=1,
                                 encoder_attention_heads=2, encoder_ffn_dim=32, max_target_positions=positions,
                                 pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    return WhisperDecoderLM(cfg).eval()


def test_position_limit_is_the_learned_table_only() -> None:
    assert position_limit(_whisper(16)) == 16
    llama = build_llm(LLMConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_positions=8), 20)
    assert position_limit(llama) is None  # rotary positions: a Llama runs past max_positions


def _model() -> SpeechLLM:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="features", dim=16, dropout=0.0), 8, 21)
    return SpeechLLM(enc, FrameStack(16, 16, k=2), _whisper(16), prefix_ids=[1], suffix_ids=[4], eos_id=2).eval()


def test_too_long_target_is_an_input_error_naming_the_utterance() -> None:
    model = _model()
    feats = torch.randn(2, 6, 8)  # 3 speech positions each after stacking by 2
    short, long = torch.tensor([7, 8]), torch.arange(5, 25)  # 1 + 3 + 1 + 20 + eos > 16
    ok = SpeechBatch(feats=feats, lengths=torch.tensor([6, 6]), targets=[short, short], ctc_targets=[short, short],
                     texts=["a", "b"])
    with torch.no_grad():
        assert torch.isfinite(model.loss(ok))
        bad = SpeechBatch(feats=feats, lengths=torch.tensor([6, 6]), targets=[short, long],
                          ctc_targets=[short, long], texts=["fine", "far too long"])
        with pytest.raises(InputError, match="more than the LM's 16 learned positions") as err:
            model.loss(bad)  # was: IndexError: index 16 is out of bounds for dimension 0 with size 16
    assert "far too long" in str(err.value) and "26 positions" in str(err.value)


def test_generation_stops_at_the_end_of_the_position_table() -> None:
    model = _model()
    with torch.no_grad():
        out = model.generate(torch.randn(1, 6, 8), torch.tensor([6]), max_new_tokens=50,
                             allowed=torch.tensor([i != 2 for i in range(50)]))  # eos never chosen
        assert len(out[0]) == 16 - (1 + 3 + 1)  # each new token is fed back: positions 5..15
        with pytest.raises(InputError, match="learned positions"):
            model.generate(torch.randn(1, 40, 8), torch.tensor([40]), max_new_tokens=5)


def _batch(targets: list[torch.Tensor], texts: list[str]) -> SpeechBatch:
    n = len(targets)
    return SpeechBatch(feats=torch.randn(n, 6, 8, generator=torch.Generator().manual_seed(1)),
                       lengths=torch.full((n,), 6), targets=targets, ctc_targets=targets, texts=texts)


def test_a_too_long_row_is_dropped_from_its_batch_and_counted() -> None:
    model = _model()
    short, long = torch.tensor([7, 8]), torch.arange(5, 25)  # 1 + 3 + 1 + 20 + eos = 26 > 16
    both = _batch([short, long], ["fine", "far too long"])
    left_out: list[str] = []
    with torch.no_grad():
        loss = model.loss(both, left_out)
        alone = model.loss(SpeechBatch(feats=both.feats[:1], lengths=both.lengths[:1], targets=[short],
                                       ctc_targets=[short], texts=["fine"]))
    assert left_out == ["far too long"]
    torch.testing.assert_close(loss, alone)  # the batch's loss is the loss of the rows that fit


def test_a_batch_with_no_row_left_is_skipped() -> None:
    model = _model().train()
    long = torch.arange(5, 25)
    left_out: list[str] = []
    loss = model.loss(_batch([long, long], ["x", "y"]), left_out)
    loss.backward()  # the loop's step: no parameter gets a gradient, so the update changes nothing
    assert left_out == ["x", "y"] and float(loss.detach()) == 0.0
    assert all(p.grad is None for p in model.parameters())


def test_decoding_leaves_out_the_rows_past_the_positions() -> None:
    from speechtok.trainers.latent.decode import DecodeRow, decode_records

    model = _model()
    rng = np.random.default_rng(0)
    rows = [DecodeRow(id="short", feats=rng.normal(size=(6, 8)).astype(np.float32), reference="a b"),
            DecodeRow(id="long", feats=rng.normal(size=(40, 8)).astype(np.float32), reference="c"),  # 1+20+1 > 15
            DecodeRow(id="short2", feats=rng.normal(size=(8, 8)).astype(np.float32), reference="d")]
    left_out: dict[str, str] = {}
    recs = decode_records(model, rows, lambda ids: " ".join(map(str, ids)), max_new_tokens=30,
                          allowed=torch.tensor([i != 2 for i in range(50)]), left_out=left_out)
    assert [r["id"] for r in recs] == ["short", "short2"]  # was: InputError for the whole decode
    assert list(left_out) == ["long"] and "16 learned positions" in left_out["long"]
    assert all(np.isfinite(r["scores"]["logprob"]) for r in recs)  # a hypothesis filling the table: no eos
    with pytest.raises(InputError, match="learned positions"):
        decode_records(model, rows, str, max_new_tokens=3, allowed=None)  # no left_out: strict


def _shards(out: Path) -> dict[str, int]:
    """8 cuts over 4 speakers, feats (T, 8); each speaker's first cut has 1000 frames (500 speech
    positions after stacking by 2: past Whisper's 448), the other 10. -> {cut id: frames}."""
    from speechtok.shards.schema import GroupMeta
    from speechtok.shards.writer import commit_group_shard
    from speechtok.trainers.token.synthetic import CUTS

    feats = GroupMeta(group="feats.syn", kind="feats", stage="fbank", stage_version="1", config={},
                      fingerprint="syn-feats", frame_rate=50.0, dim=8, dtype="float32")
    rng = np.random.default_rng(0)
    frames = {f"c{i}": 1000 if i < 4 else 10 for i in range(8)}
    cuts = [{"id": c, "recording_id": c, "start": 0.0, "duration": t / 50.0, "sampling_rate": 16000,
             "text": "CAT DOG", "speaker": f"spk{i % 4}", "language": "en"} for i, (c, t) in enumerate(frames.items())]
    commit_group_shard(out, 0, CUTS, cuts)
    commit_group_shard(out, 0, feats, [{"id": c, "feats": rng.normal(size=(t, 8)).astype(np.float32)}
                                       for c, t in frames.items()])
    return frames


def test_whisper_decoder_run_leaves_out_long_utterances_and_counts_them(
        tmp_path: Path, whisper_ct2_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechtok.trainers.latent import run_recipe

    frames = _shards(tmp_path / "s")
    rc = run_recipe(ROOT / "recipes" / "latent_tiny.yaml", tmp_path / "run", {
        "data.shards": str(tmp_path / "s"), "data.split": {"train": 0.5, "seed": 0}, "llm.kind": "whisper_decoder",
        "llm.path": str(whisper_ct2_dir), "stage1.max_steps": 1, "train.max_steps": 4, "train.eval_every": 4,
        "batching.max_batch": 1, "latent.max_new_tokens": 3})
    assert rc == 0  # was: InputError "... more than the LM's 448 learned positions" stopped the run
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    tl = ev["too_long"]
    dev_ids = [json.loads(line)["id"] for line in (tmp_path / "run" / "dev_hyps.jsonl").read_text().splitlines()]
    assert tl["limit"] == 448 and tl["dev"] + len(dev_ids) == ev["dev_eval_utts"]
    assert tl["dev"] >= 1 and all(frames[i] == 10 for i in dev_ids)  # each dev speaker has one long cut
    assert tl["train_rows"] >= 1 and tl["train_batches_skipped"] == tl["train_rows"]  # one row per batch
    assert "learned positions (eval.json too_long)" in capsys.readouterr().out
    log = (tmp_path / "run" / "stage2" / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(line)["eval"] for line in log if '"eval"' in line]
    assert evals[-1]["too_long"] == tl["dev"]  # the in-training eval scores only the rows that fit
