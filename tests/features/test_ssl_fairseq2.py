"""The ``fairseq2`` SSL backend: the same tiny wav2vec 2.0 weights give the same layer features
through fairseq2's loaders as through transformers; padded batches equal one-by-one runs; the
pass stops at the deepest layer; a tiny w2v-BERT (fbank input) loads and extracts; errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from fairseq2_tiny import tiny_w2vbert, tiny_wav2vec2_pair

from speechtok.errors import ConfigError, InputError
from speechtok.features.ssl import SSLConfig, SSLFeatureExtractor

pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")

LAYERS = (0, 1, 3)
#: float32 features of the two libraries on the same weights agree to this (measured: 0 on CPU).
TOL = 1e-5


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("w2v2")
    return {"layer": tiny_wav2vec2_pair(root / "layer", group_norm=False),
            "group": tiny_wav2vec2_pair(root / "group", group_norm=True)}


def _waves(n: int = 12, seed: int = 0) -> list[np.ndarray]:
    """`n` signals: n - 3 of varied lengths (0.025 - 1 s) and 3 of one length (an exact bucket)."""
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(400, 16000, n - 3)] + [8000] * 3
    return [(0.1 * rng.standard_normal(k)).astype(np.float32) for k in lengths]


def _fs2(model: Path, **kw: object) -> SSLFeatureExtractor:
    return SSLFeatureExtractor(SSLConfig(model=str(model), backend="fairseq2", layers=LAYERS, dtype="float32",
                                         max_batch_seconds=4.0, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["layer", "group"])
def test_fairseq2_and_transformers_agree_on_the_same_weights(pairs: dict[str, tuple[Path, Path]], kind: str,
                                                             tmp_path: Path) -> None:
    hf_dir, fs2_dir = pairs[kind]
    hf = SSLFeatureExtractor(SSLConfig(model=str(hf_dir), layers=LAYERS, dtype="float32", max_batch_seconds=4.0))
    fs2 = _fs2(fs2_dir)
    assert type(fs2.model).__module__.startswith("fairseq2.models.wav2vec2")
    assert (fs2.frame_rate, fs2.dim, fs2.num_layers) == (hf.frame_rate, hf.dim, hf.num_layers) == (50.0, 32, 3)
    assert (fs2.normalize, fs2.use_mask) == (hf.normalize, hf.use_mask) == ((True, True) if kind == "layer"
                                                                           else (False, False))
    waves = _waves()
    a, b = hf.extract_batch(waves), fs2.extract_batch(waves)
    for k in LAYERS:
        for i, w in enumerate(waves):
            assert b[k][i].dtype == np.float32 and b[k][i].shape == (hf.num_frames(len(w)), 32)
            assert np.abs(a[k][i] - b[k][i]).max() <= TOL, (kind, k, i)
    # The comparison can fail: other weights (another seed) give other features.
    _, other = tiny_wav2vec2_pair(tmp_path, group_norm=kind == "group", seed=1)
    c = _fs2(other).extract_batch(waves[:1])
    assert np.abs(c[3][0] - b[3][0]).max() > 1e-2


@pytest.mark.parametrize("kind", ["layer", "group"])
def test_padded_batches_equal_one_by_one(pairs: dict[str, tuple[Path, Path]], kind: str) -> None:
    ex = _fs2(pairs[kind][1])
    waves = _waves(seed=1)
    batched = ex.extract_batch(waves)
    for i, w in enumerate(waves):
        single = ex.extract(w)
        for k in LAYERS:
            assert np.abs(batched[k][i] - single[k]).max() <= 1e-4


def test_stops_at_deepest_layer(pairs: dict[str, tuple[Path, Path]]) -> None:
    ex = SSLFeatureExtractor(SSLConfig(model=str(pairs["layer"][1]), backend="fairseq2", layers=(1,)))
    calls: list[int] = []
    hooks = [layer.register_forward_hook(lambda *_a, i=i: calls.append(i))
             for i, layer in enumerate(ex.model.encoder.layers)]
    feats = ex.extract(_waves(4)[0])
    for h in hooks:
        h.remove()
    assert calls == [0] and feats[1].dtype == np.float16  # layer 1 = output of encoder layer 0


def test_w2vbert_fbank_model_loads_and_extracts(tmp_path: Path) -> None:
    ex = _fs2(tiny_w2vbert(tmp_path / "w2vbert"))
    assert ex.fs2 is not None and ex.fs2.use_fbank and ex.info["model_type"] == "w2vbert"
    assert (ex.frame_rate, ex.dim, ex.use_mask, ex.normalize) == (50.0, 32, True, False)
    waves = [np.zeros(400, np.float32), *_waves(seed=2)]
    batched = ex.extract_batch(waves)
    assert batched[3][0].shape == (0, 32)  # one 25 ms fbank frame cannot be stacked by two
    for i, w in enumerate(waves[1:], start=1):
        # fbank frames (S - 400) // 160 + 1, stacked by two: 50 frames/s like the waveform models
        assert batched[3][i].shape == (((len(w) - 400) // 160 + 1) // 2, 32) == (ex.num_frames(len(w)), 32)
        single = ex.extract(w)
        for k in LAYERS:
            assert np.abs(batched[k][i] - single[k]).max() <= 1e-4
    assert np.abs(batched[3][1]).max() > 0.1


@pytest.mark.parametrize(("kind", "tol"), [("layer", 3e-2), ("w2vbert", 0.15)])  # measured 0.009, 0.053
def test_chunked_close_to_unchunked(pairs: dict[str, tuple[Path, Path]], kind: str, tol: float,
                                    tmp_path: Path) -> None:
    """Long signals are chunked on the frame grid (w2v-BERT too: fbank frames pair up across the
    chunk offsets, multiples of 320 samples); chunks see 1 s of context and, for w2v-BERT,
    standardise their fbank on their own, so values differ a little near the boundaries."""
    model = pairs["layer"][1] if kind == "layer" else tiny_w2vbert(tmp_path / "w2vbert")
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 12) / 16000
    w = (0.1 * rng.standard_normal(t.size) * (1 + np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    full = _fs2(model, chunk_seconds=None).extract(w)[3]
    chunked = _fs2(model, chunk_seconds=4.0, overlap_seconds=1.0).extract(w)[3]
    assert chunked.shape == full.shape == (599, 32)
    rel = np.linalg.norm(chunked - full) / np.linalg.norm(full)
    assert rel <= tol, rel


def test_checksum_names_card_and_checkpoint(pairs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    src = pairs["group"][1]
    copy = shutil.copytree(src, tmp_path / "copy")
    first = _fs2(src).model_checksum()
    assert first is not None and first.startswith("sha256:") and _fs2(copy).model_checksum() == first
    card = yaml.safe_load((copy / "model.yaml").read_text())
    card["model_config"]["encoder_config"]["dropout_p"] = 0.2  # the card changes the model's meaning
    (copy / "model.yaml").write_text(yaml.safe_dump(card))
    assert _fs2(copy).model_checksum() != first


def test_errors(pairs: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    fs2_dir = pairs["group"][1]
    with pytest.raises(ConfigError, match="backend"):
        SSLFeatureExtractor(SSLConfig(model=str(fs2_dir), backend="torchaudio"))
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        SSLFeatureExtractor(SSLConfig(model=str(fs2_dir), backend="fairseq2", layers=(4,)))
    with pytest.raises(ConfigError, match="batching"):
        SSLFeatureExtractor(SSLConfig(model=str(fs2_dir), backend="fairseq2", layers=(1,), batching="mask"))
    with pytest.raises(InputError, match="asset card"):
        SSLFeatureExtractor(SSLConfig(model=str(tmp_path), backend="fairseq2", layers=(1,)))
    card = yaml.safe_load((fs2_dir / "model.yaml").read_text())
    for field, value, message in [("checkpoint", "https://example.org/w2v2.pt", "never downloads"),
                                  ("checkpoint", "missing.pt", "does not exist"),
                                  ("model_family", "llama", "not an SSL speech encoder"),
                                  ("model_arch", "tiny_unknown", "cannot be loaded by fairseq2"),
                                  ("model_family", "w2vbert", "cannot be loaded by fairseq2")]:
        bad = tmp_path / field / value.replace("/", "_")
        bad.mkdir(parents=True)
        (bad / "model.yaml").write_text(yaml.safe_dump({**card, field: value}))
        if field != "checkpoint":  # (a w2vbert card over a wav2vec2 checkpoint: a mismatch)
            shutil.copy(fs2_dir / "model.pt", bad / "model.pt")
        with pytest.raises(InputError, match=message):
            SSLFeatureExtractor(SSLConfig(model=str(bad), backend="fairseq2", layers=(1,)))
