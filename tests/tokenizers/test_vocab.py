"""VocabSpec: layout, range checks, JSON round trip, Hugging Face export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.vocab import VocabSpec


def _spec() -> VocabSpec:
    return VocabSpec(text_size=40, units={"km100": 100}, codes={"enc": (3, 16)}, pad_to_multiple_of=64)


def test_layout_is_contiguous_and_ordered() -> None:
    spec = _spec()
    ranges = spec.ranges
    assert [r.name for r in ranges] == ["text", "special", "units.km100",
                                        "codes.enc.q0", "codes.enc.q1", "codes.enc.q2"]
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.stop == b.start
    assert spec.size == 40 + len(spec.special_tokens) + 100 + 3 * 16
    assert spec.embedding_rows % 64 == 0 and spec.embedding_rows >= spec.size


def test_unit_and_code_round_trip() -> None:
    spec = _spec()
    units = np.array([0, 5, 99], dtype=np.uint16)
    ids = spec.unit_ids("km100", units)
    assert ids[0] == spec.range("units.km100").start
    np.testing.assert_array_equal(spec.to_units("km100", ids), units)
    codes = np.array([[0, 1, 15], [3, 4, 5]], dtype=np.uint16)
    cids = spec.code_ids("enc", codes)
    assert cids[0, 1] == spec.range("codes.enc.q1").start + 1
    np.testing.assert_array_equal(spec.to_codes("enc", cids), codes)
    kinds = spec.kind_of(np.array([0, 39, 40, ids[1], cids[1, 2]]))
    assert [spec.ranges[k].name for k in kinds] == ["text", "text", "special", "units.km100", "codes.enc.q2"]


def test_out_of_range_is_an_error_naming_id_and_range() -> None:
    spec = _spec()
    with pytest.raises(InputError, match=r"token 100 is outside the range \[0, 100\) of units.km100"):
        spec.unit_ids("km100", np.array([3, 100]))
    with pytest.raises(InputError, match=r"token 16 .*codes.enc.q1"):
        spec.code_ids("enc", np.array([[0, 16, 0]]))
    start = spec.range("units.km100").start
    with pytest.raises(InputError, match=rf"id 3 is outside the range \[{start}, {start + 100}\)"):
        spec.to_units("km100", np.array([start, 3]))
    with pytest.raises(InputError, match=f"id {spec.size} is outside"):
        spec.check_ids(np.array([0, spec.size]))
    with pytest.raises(InputError, match="not a special token"):
        spec.special_id("<|nope|>")


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ConfigError, match="units"):
        VocabSpec(text_size=10, units={"km": 0})
    with pytest.raises(ConfigError, match="special_tokens"):
        VocabSpec(text_size=10, special_tokens=("<a>", "<a>"))


def test_json_round_trip(tmp_path: Path) -> None:
    spec = _spec()
    path = spec.save(tmp_path)
    assert path.name == "vocab_spec.json"
    assert VocabSpec.load(tmp_path) == spec


def test_hf_tokenizer_export_and_embedding_resize() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from speechtok.trainers.llm import build_char_tokenizer

    tok = build_char_tokenizer(["HELLO WORLD"])
    spec = VocabSpec.for_tokenizer(tok, units={"km8": 8}, codes={"c": (2, 4)}, pad_to_multiple_of=8)
    spec.add_to_tokenizer(tok)
    assert len(tok) == spec.size
    assert tok.convert_tokens_to_ids("<|u:km8:3|>") == spec.unit_ids("km8", np.array([3]))[0]
    assert tok.convert_tokens_to_ids("<|c:c:q1:2|>") == spec.code_ids("c", np.array([[0, 2]]))[0, 1]
    assert tok.convert_tokens_to_ids("<|asr|>") == spec.special_id("<|asr|>")
    # a string with speech tokens encodes to the spec's ids
    ids = tok("<|u:km8:0|>HE<|u:km8:7|>", add_special_tokens=False)["input_ids"]
    assert ids[0] == spec.unit_ids("km8", np.array([0]))[0] and ids[-1] == spec.unit_ids("km8", np.array([7]))[0]
    model = LlamaForCausalLM(LlamaConfig(vocab_size=spec.text_size, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    spec.resize_model(model)
    assert model.get_input_embeddings().weight.shape[0] == spec.embedding_rows
    assert model.get_output_embeddings().weight.shape[0] == spec.embedding_rows
    with pytest.raises(InputError, match="text_size"):
        spec.add_to_tokenizer(tok)  # already extended: sizes disagree
