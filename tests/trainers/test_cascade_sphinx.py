"""PocketSphinx n-best with the real en-us model bundled in the wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechtok.errors import ConfigError
from speechtok.trainers.cascade.data import read_kaldi_dir
from speechtok.trainers.cascade.nbest_sphinx import (
    SphinxNBest,
    SphinxNBestConfig,
    clean_sphinx_text,
)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="max_paths"):
        SphinxNBestConfig(num_hypotheses=5, max_paths=2).validate()
    with pytest.raises(ConfigError, match="lm"):
        SphinxNBestConfig(lm=Path("/nonexistent.lm")).validate()


def test_real_sphinx_nbest_is_distinct_and_clean(speechocean_dir: Path) -> None:
    utt = [u for u in read_kaldi_dir(speechocean_dir) if u.id == "000010035"]
    nb = next(SphinxNBest(SphinxNBestConfig(num_hypotheses=5)).decode_utterances(utt))
    texts = nb.texts()
    assert 1 <= len(texts) <= 5
    assert len(set(texts)) == len(texts)  # filler variants merged
    assert all(clean_sphinx_text(t) == t for t in texts)
    assert all(h.am_score <= 0 for h in nb.hyps)
    assert nb.reference == "ZERO THREE FIVE ONE" and nb.source == "sphinx"
