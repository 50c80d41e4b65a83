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


def test_noise_and_a_too_short_signal_do_not_crash() -> None:
    """Regression: PocketSphinx's n-best iterator yields None for dead paths (noise), and
    `nbest()` itself can be None (a signal shorter than one frame)."""
    import numpy as np

    dec = SphinxNBest(SphinxNBestConfig(num_hypotheses=3))
    noise = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    for wave in (noise, np.zeros(100, np.float32)):
        hyps = dec.decode(wave)
        assert len(hyps) <= 3 and all(isinstance(h.text, str) for h in hyps)
