"""Whisper's decoder as a causal LM (`WhisperDecoderLM`): loss convention, caching, memory,
save/load, vocabulary growth, and both latent variants on a tiny random-weight model; the real
tiny.en decoder as an LM where its files are installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechtok.errors import ConfigError, InputError
from speechtok.models.encoder import EncoderConfig, build_encoder
from speechtok.models.whisper_lm import WhisperDecoderLM, WhisperDecoderLMConfig
from speechtok.trainers.latent.adapters import FrameStack
from speechtok.trainers.latent.model import SpeechBatch, SpeechLLM
from speechtok.trainers.llm import LLMConfig, load_causal_lm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(frames: int = 4) -> WhisperDecoderLM:
    torch.manual_seed(0)
    cfg = WhisperDecoderLMConfig(no_audio_frames=frames, vocab_size=50, d_model=16, decoder_layers=2,
                                 decoder_attention_heads=2, decoder_ffn_dim=32, encoder_layers=1,
                                 encoder_attention_heads=2, encoder_ffn_dim=32, max_target_positions=64,
                                 pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    lm = WhisperDecoderLM(cfg)
    lm.no_audio_memory.normal_()
    return lm.eval()


def test_loss_is_shifted_cross_entropy_on_labelled_positions() -> None:
    lm = _tiny()
    ids = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 9, 2, 0]])
    labels = ids.clone()
    labels[:, 0] = -100
    labels[1, 4] = -100
    mask = (labels != -100) | (torch.arange(5) == 0)
    with torch.no_grad():
        loss = lm(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        logits = lm(input_ids=ids, attention_mask=mask.long()).logits
    sel = labels[:, 1:] != -100
    expected = torch.nn.functional.cross_entropy(logits[:, :-1][sel], labels[:, 1:][sel])
    torch.testing.assert_close(loss, expected)


def test_cached_decoding_equals_full_forward_and_memory_matters() -> None:
    lm = _tiny()
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        full = lm(input_ids=ids).logits
        res = lm(input_ids=ids[:, :2], use_cache=True)
        step = lm(input_ids=ids[:, 2:3], past_key_values=res.past_key_values, use_cache=True)
        step = lm(input_ids=ids[:, 3:4], past_key_values=step.past_key_values, use_cache=True)
        other = lm(input_ids=ids, encoder_outputs=(torch.randn(1, 3, 16),)).logits
    torch.testing.assert_close(step.logits[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(other, full)
    with pytest.raises(InputError, match="input_ids or inputs_embeds"):
        lm()


def test_memory_pads_with_no_audio_frames() -> None:
    lm = _tiny(frames=3)
    states = torch.ones(2, 5, 16)
    mem = lm.memory(2, states, torch.tensor([5, 2]))
    torch.testing.assert_close(mem[0], states[0])
    torch.testing.assert_close(mem[1, :2], states[1, :2])
    torch.testing.assert_close(mem[1, 2:], lm.no_audio_memory[0, [2, 0, 1]])
    assert lm.memory(4).shape == (4, 3, 16)


def test_save_load_keeps_class_and_memory_and_resize_keeps_rows(tmp_path: Path) -> None:
    lm = _tiny()
    before = lm.get_input_embeddings().weight.detach().clone()
    lm.resize_token_embeddings(60, mean_resizing=False)
    torch.testing.assert_close(lm.get_input_embeddings().weight[:50], before)
    assert lm.proj_out.weight.shape[0] == 60
    lm.save_pretrained(str(tmp_path / "m"))
    back = load_causal_lm(tmp_path / "m")
    assert type(back).__name__ == "WhisperDecoderLM"
    torch.testing.assert_close(back.no_audio_memory, lm.no_audio_memory)
    ids = torch.tensor([[1, 55, 3]])
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids).logits, lm(input_ids=ids).logits)


@pytest.mark.parametrize("speech_into", ["prefix", "memory"])
def test_latent_variants_batch_equals_singles(speech_into: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="features", dim=16, dropout=0.0), 8, 21)
    model = SpeechLLM(enc, FrameStack(16, 16, k=2), _tiny(), prefix_ids=[1], suffix_ids=[4], eos_id=2,
                      speech_into=speech_into).eval()
    feats = [torch.randn(6, 8), torch.randn(6, 8)]  # equal lengths: no memory padding in the batch
    targets = [torch.tensor([7, 8, 9]), torch.tensor([11])]
    x = torch.stack(feats)
    batch = SpeechBatch(feats=x, lengths=torch.tensor([6, 6]), targets=targets, ctc_targets=targets, texts=["", ""])
    with torch.no_grad():
        both = model.loss(batch)
        singles = [model.loss(SpeechBatch(feats=f[None], lengths=torch.tensor([6]), targets=[t], ctc_targets=[t],
                                          texts=[""])) for f, t in zip(feats, targets, strict=True)]
        out = model.generate(x, torch.tensor([6, 6]), max_new_tokens=4)
    n = [len(t) + 1 for t in targets]
    torch.testing.assert_close(both, sum(s * k for s, k in zip(singles, n, strict=True)) / sum(n), atol=1e-5, rtol=1e-5)
    assert len(out) == 2 and all(len(o) <= 4 for o in out)
    if speech_into == "memory":  # the speech reaches the LM through cross-attention only
        emb, _, _ = model._splice(*model.speech(x, torch.tensor([6, 6]))[:2], None)
        assert emb.shape[1] == 2


def test_identity_encoder_passes_features_on_and_feeds_the_memory() -> None:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="identity", dim=999), 16, 21)  # dim is the features' own
    x = torch.randn(2, 5, 16)
    h, hl = enc(x, torch.tensor([5, 3]))
    assert enc.dim == 16 and enc.ctc_head.in_features == 16 and hl.tolist() == [5, 3]
    torch.testing.assert_close(h[0], x[0])
    torch.testing.assert_close(h[1, :3], x[1, :3])
    assert not h[1, 3:].any()  # padding zeroed, as every encoder does
    assert [n for n, _ in enc.named_parameters()] == ["ctc_head.weight", "ctc_head.bias"]
    model = SpeechLLM(enc, FrameStack(16, 16, k=1, post="none"), _tiny(), prefix_ids=[1], suffix_ids=[4], eos_id=2,
                      speech_into="memory").eval()
    y, yl = model.speech(x, torch.tensor([5, 5]))[:2]
    torch.testing.assert_close(model._memory(y, yl)["encoder_outputs"][0], x)  # the features are the memory
    with pytest.raises(ConfigError, match="encoder.kind"):
        EncoderConfig(kind="projection").validate()


def test_memory_variant_needs_cross_attention_and_kind_is_checked() -> None:
    enc = build_encoder(EncoderConfig(kind="features", dim=16, dropout=0.0), 8, 21)
    from speechtok.trainers.llm import build_llm

    llama = build_llm(LLMConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32), 20)
    with pytest.raises(ConfigError, match="speech_into"):
        SpeechLLM(enc, FrameStack(16, 16, k=2), llama, prefix_ids=[1], suffix_ids=[], eos_id=2, speech_into="memory")
    with pytest.raises(ConfigError, match="llm.kind"):
        LLMConfig(kind="gpt").validate()


@pytest.mark.slow
def test_real_decoder_is_an_english_lm() -> None:
    """Whisper tiny.en's decoder (silent memory) prefers word orders of English."""
    from speechtok.models.whisper_lm import sot_ids, whisper_decoder_lm, whisper_tokenizer
    from speechtok.paths import whisper_tiny_en_dir

    try:
        src = whisper_tiny_en_dir()
    except InputError as exc:
        pytest.skip(f"Whisper tiny.en weights are not installed: {exc}")
    lm, tok = whisper_decoder_lm(src).eval(), whisper_tokenizer(src)
    assert len(tok) == lm.config.vocab_size
    pre = sot_ids(src)

    def logprob(text: str) -> float:
        ids = torch.tensor([[*pre, *tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]])
        with torch.no_grad():
            lp = torch.log_softmax(lm(input_ids=ids).logits[0, :-1], -1)
        return float(lp[len(pre) - 1 :].gather(-1, ids[0, len(pre) :, None]).sum())

    assert logprob("WE CALL IT BEAR") > logprob("BEAR IT CALL WE")
    assert logprob("I LIKE TO EAT APPLES") > logprob("APPLES EAT TO LIKE I")
