"""Latent family: encoders, splicing into the LLM, LoRA, an end-to-end recipe run per adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from speechtok.models.checkpoint import load_model_tensors, model_tensors
from speechtok.models.encoder import EncoderConfig, build_encoder, ctc_greedy, ctc_loss
from speechtok.paths import ROOT
from speechtok.trainers.latent import run_recipe
from speechtok.trainers.latent.adapters import FrameStack
from speechtok.trainers.latent.model import SpeechBatch, SpeechLLM
from speechtok.trainers.llm import LLMConfig, build_llm, count_trainable
from speechtok.trainers.token.synthetic import write_synthetic_shards

TINY = LLMConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


@pytest.mark.parametrize("arch", ["transformer", "conformer"])
def test_fbank_encoder_padded_equals_unpadded(arch: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(arch=arch, dim=32, num_layers=2, dropout=0.0), 20, 11).eval()
    lengths = [37, 12, 5]
    rows = [torch.randn(n, 20) for n in lengths]
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    with torch.no_grad():
        h, hl = enc(x, torch.tensor(lengths))
        assert hl.tolist() == [10, 3, 2]
        for b, row in enumerate(rows):
            h1, hl1 = enc(row[None], torch.tensor([lengths[b]]))
            torch.testing.assert_close(h[b, : hl[b]], h1[0, : hl1[0]], atol=1e-5, rtol=1e-4)
        loss = ctc_loss(enc.ctc_head(h), hl, [torch.tensor([1, 2]), torch.tensor([3]), torch.tensor([4])])
        assert torch.isfinite(loss)
        assert len(ctc_greedy(enc.ctc_head(h), hl)) == 3


def _speech_llm(lora: bool = False) -> SpeechLLM:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="features", dim=16, dropout=0.0), 8, 21)
    llm = build_llm(LLMConfig(**{**TINY.__dict__, "mode": "lora" if lora else "full"}), 20)
    return SpeechLLM(enc, FrameStack(16, 32, k=2), llm, prefix_ids=[2], suffix_ids=[5, 6], eos_id=3).eval()


def test_batched_loss_equals_token_weighted_single_losses() -> None:
    model = _speech_llm()
    feats = [torch.randn(9, 8), torch.randn(4, 8)]
    targets = [torch.tensor([7, 8, 9, 10]), torch.tensor([11])]
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    batch = SpeechBatch(feats=x, lengths=torch.tensor([9, 4]), targets=targets, ctc_targets=targets, texts=["", ""])
    with torch.no_grad():
        both = model.loss(batch)
        singles = [model.loss(SpeechBatch(feats=f[None], lengths=torch.tensor([len(f)]), targets=[t], ctc_targets=[t],
                                          texts=[""])) for f, t in zip(feats, targets, strict=True)]
    n = [len(t) + 1 for t in targets]  # + eos
    expected = sum(s * k for s, k in zip(singles, n, strict=True)) / sum(n)
    torch.testing.assert_close(both, expected, atol=1e-5, rtol=1e-5)
    out = model.generate(x, torch.tensor([9, 4]), max_new_tokens=5)
    assert len(out) == 2 and all(len(o) <= 5 for o in out)


def test_lora_trains_few_parameters_and_checkpoints_them() -> None:
    full, lora = _speech_llm(), _speech_llm(lora=True)
    assert 0 < count_trainable(lora) < count_trainable(full)
    assert not any(p.requires_grad for p in lora.encoder.parameters())
    saved = model_tensors(lora, trainable_only=True)
    assert saved and all("lora" in k or "modules_to_save" in k or k.startswith("adapter") for k in saved)


def test_checkpoint_tensor_load_rejects_unknown_names(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from speechtok.errors import InputError

    save_file({"nope.weight": torch.zeros(1)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(InputError, match="nope.weight"):
        load_model_tensors(torch.nn.Linear(2, 2), tmp_path / "m.safetensors")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("syn"), feats_dim=16, num_cuts=40)


def _run(shards: Path, out: Path, **sets: str) -> dict:
    base = {"data.shards": str(shards), "stage1.max_steps": 3, "train.max_steps": 3, "latent.eval_utts": 3,
            "latent.max_new_tokens": 8}
    assert run_recipe(ROOT / "recipes" / "latent_tiny.yaml", out, {**base, **sets}) == 0
    return json.loads((out / "eval.json").read_text())


def test_latent_recipe_end_to_end_and_encoder_reuse(shards: Path, tmp_path: Path) -> None:
    first = _run(shards, tmp_path / "a")
    for key in ("cer", "wer", "ctc.cer", "adapter_tokens_per_s", "trainable_params", "stage2_wall_s"):
        assert key in first
    assert first["adapter_tokens_per_s"] == pytest.approx(25.0, rel=0.1)  # 50 frames/s, stack k=2
    second = _run(shards, tmp_path / "b", **{"latent.encoder_from": str(tmp_path / "a"), "adapter.kind": "qformer",
                                             "adapter.window": 10, "adapter.num_queries": 2})
    assert not (tmp_path / "b" / "stage1").exists()
    assert second["ctc.cer"] == first["ctc.cer"]  # same encoder
    assert second["adapter_tokens_per_s"] == pytest.approx(10.0, rel=0.25)


@pytest.mark.parametrize("kind", ["conv", "ctc", "qformer"])
def test_latent_recipe_each_adapter(shards: Path, tmp_path: Path, kind: str) -> None:
    report = _run(shards, tmp_path / kind, **{"adapter.kind": kind, "llm.mode": "lora"})
    assert report["trainable_params"] > 0
