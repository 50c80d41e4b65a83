"""A latent sequence longer than the LM's learned positions is an `InputError`, not an IndexError
inside Whisper's position table; generation stops at the table's end."""

from __future__ import annotations

import pytest
import torch

from speechtok.errors import InputError
from speechtok.models.encoder import EncoderConfig, build_encoder
from speechtok.models.whisper_lm import WhisperDecoderLM, WhisperDecoderLMConfig
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
