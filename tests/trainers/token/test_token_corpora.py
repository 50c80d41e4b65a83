"""Several corpora, one vocabulary: units read together are checked to share their k-means model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.units import UnitBPE
from speechtok.tokenizers.vocab import VocabSpec
from speechtok.trainers.token.dataset import load_utterances
from speechtok.trainers.token.recipe import TokenDataConfig
from speechtok.trainers.token.synthetic import write_synthetic_shards


def test_vocab_spec_and_unit_bpe_checksums_identify_them(tmp_path: Path) -> None:
    a = VocabSpec(text_size=100, units={"km32": 32})
    assert a.checksum() == VocabSpec.load(a.save(tmp_path / "a.json")).checksum()
    assert a.checksum() != VocabSpec(text_size=100, units={"km32": 33}).checksum()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 8, 40).astype(np.uint16) for _ in range(20)]
    bpe = UnitBPE.train(seqs, k=8, vocab_size=20)
    assert UnitBPE.load(bpe.save(tmp_path / "bpe")).checksum() == bpe.checksum()
    assert UnitBPE.train(seqs, k=8, vocab_size=16).checksum() != bpe.checksum()


def test_more_shards_are_read_together_only_with_the_same_units(tmp_path: Path) -> None:
    a = write_synthetic_shards(tmp_path / "a", num_cuts=6)
    b = write_synthetic_shards(tmp_path / "b", num_cuts=4, seed=1)
    utts, vocab = load_utterances(TokenDataConfig(shards=str(a), units="units.km32", more_shards=(str(b),)))
    assert len(utts) == 10 and vocab == 32
    other_k = write_synthetic_shards(tmp_path / "k16", num_cuts=4, k=16)  # writes units.km16
    with pytest.raises(InputError, match=r"lacks the group\(s\) \['units.km32'\].*model"):
        load_utterances(TokenDataConfig(shards=str(a), units="units.km32", more_shards=(str(other_k),)))


def test_units_of_another_kmeans_model_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechtok.trainers import run_data

    a = write_synthetic_shards(tmp_path / "a", num_cuts=4)
    b = write_synthetic_shards(tmp_path / "b", num_cuts=4, seed=1)
    real = run_data._meta

    def meta(shards: Path, group: str) -> object:  # b's units come from another k-means model
        m = real(shards, group)
        return replace(m, model_checksum="sha-b") if Path(shards) == b else replace(m, model_checksum="sha-a")

    monkeypatch.setattr(run_data, "_meta", meta)
    with pytest.raises(ConfigError, match=r"units\.km32\.model_checksum.*must equal 'sha-a'"):
        load_utterances(TokenDataConfig(shards=str(a), units="units.km32", more_shards=(str(b),)))
