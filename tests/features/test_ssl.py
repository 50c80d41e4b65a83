"""SSL layer features: batched == one-by-one, early stop == full model, chunking, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from speechtok.errors import ConfigError, InputError
from speechtok.features.ssl import SSLFeatureExtractor

TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)

KINDS = {
    # name: (config class, model class, extra config)
    "hubert-group": (tf.HubertConfig, tf.HubertModel, {"feat_extract_norm": "group"}),
    "hubert-layer-stable": (tf.HubertConfig, tf.HubertModel,
                            {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
    "wav2vec2-group": (tf.Wav2Vec2Config, tf.Wav2Vec2Model, {"feat_extract_norm": "group"}),
    "wav2vec2-layer": (tf.Wav2Vec2Config, tf.Wav2Vec2Model, {"feat_extract_norm": "layer"}),
    "wavlm": (tf.WavLMConfig, tf.WavLMModel,
              {"feat_extract_norm": "layer", "num_buckets": 16, "max_bucket_distance": 50}),
    "data2vec": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel,
                 {"num_conv_pos_embeddings": 5, "conv_pos_kernel_size": 5}),
}


def _save(tmp: Path, kind: str) -> Path:
    cfg_cls, model_cls, extra = KINDS[kind]
    kw = {**TINY, **extra}
    if kind == "data2vec":
        kw.pop("num_conv_pos_embedding_groups")
    torch.manual_seed(0)
    model_cls(cfg_cls(**kw)).save_pretrained(tmp / kind)
    return tmp / kind


def _waves(n: int = 32, seed: int = 0) -> list[np.ndarray]:
    """`n` signals: n - 4 of varied lengths (0.025 - 1 s) and 4 of one length (an exact bucket)."""
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(400, 16000, max(n - 4, 0))] + [8000] * min(n, 4)
    return [(0.1 * rng.standard_normal(k)).astype(np.float32) for k in lengths]


@pytest.mark.parametrize("kind", list(KINDS))
def test_batched_equals_single_and_full_model(tmp_path: Path, kind: str) -> None:
    ex = SSLFeatureExtractor(_save(tmp_path, kind), layers=(0, 1, 3), dtype="float32",
                             max_batch_seconds=4.0)
    if kind in ("hubert-layer-stable", "wav2vec2-layer", "wavlm"):
        assert ex.use_mask
    else:
        assert not ex.use_mask  # group norm / data2vec: exact-length buckets
    waves = _waves()
    batched = ex.extract_batch(waves)
    for i, w in enumerate(waves):
        single = ex.extract(w)
        for k in (0, 1, 3):
            assert batched[k][i].shape == (ex.num_frames(len(w)), 32)
            assert np.abs(batched[k][i] - single[k]).max() <= 1e-4
    # Early stop returns what the full model's hidden_states hold.
    full = tf.AutoModel.from_pretrained(str(tmp_path / kind)).eval()
    w = waves[0]
    x = (w - w.mean()) / np.sqrt(w.var() + 1e-7) if ex.normalize else w
    with torch.no_grad():
        hs = full(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states
    for k in (0, 1, 3):
        np.testing.assert_allclose(batched[k][0], hs[k][0].numpy(), atol=1e-4, rtol=0)


def test_stops_at_deepest_layer(tmp_path: Path) -> None:
    ex = SSLFeatureExtractor(_save(tmp_path, "hubert-group"), layers=(1,))
    calls = []
    hooks = [layer.register_forward_hook(lambda *_a, i=i: calls.append(i))
             for i, layer in enumerate(ex.model.encoder.layers)]
    feats = ex.extract(_waves(2)[0])
    for h in hooks:
        h.remove()
    assert calls == [0]  # layer index 1 = output of the first transformer layer; layers 2, 3 skipped
    assert feats[1].dtype == np.float16


@pytest.mark.parametrize(("kind", "tol"), [("hubert-layer-stable", 5e-2), ("hubert-group", 0.2)])
def test_chunked_close_to_unchunked(tmp_path: Path, kind: str, tol: float) -> None:
    d = _save(tmp_path, kind)
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 12) / 16000
    w = (0.1 * rng.standard_normal(t.size) * (1 + np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    full = SSLFeatureExtractor(d, layers=(2,), dtype="float32", chunk_seconds=None).extract(w)[2]
    chunked = SSLFeatureExtractor(d, layers=(2,), dtype="float32", chunk_seconds=4.0,
                                  overlap_seconds=1.0).extract(w)[2]
    assert chunked.shape == full.shape
    rel = np.linalg.norm(chunked - full) / np.linalg.norm(full)
    assert rel <= tol, rel
    # Far from every chunk boundary (+-1 s) a layer-norm model's frames are nearly identical.
    if kind == "hubert-layer-stable":
        inner = np.abs(chunked[75:125] - full[75:125]).max() / np.abs(full).max()
        assert inner <= 1e-2


def test_short_and_empty_signals(tmp_path: Path) -> None:
    ex = SSLFeatureExtractor(_save(tmp_path, "wav2vec2-group"), layers=(3,))
    out = ex.extract_batch([np.zeros(0, np.float32), np.zeros(399, np.float32),
                            0.1 * np.ones(400, np.float32)])[3]
    assert [o.shape for o in out] == [(0, 32), (0, 32), (1, 32)]


def test_errors(tmp_path: Path) -> None:
    d = _save(tmp_path, "hubert-group")
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        SSLFeatureExtractor(d, layers=(4,))
    with pytest.raises(ConfigError, match="batching"):
        SSLFeatureExtractor(d, layers=(1,), batching="mask")
    with pytest.raises(InputError, match="8000 Hz"):
        SSLFeatureExtractor(d, layers=(1,)).extract_batch([np.zeros(800, np.float32)], sr=8000)
    with pytest.raises(InputError):
        SSLFeatureExtractor(tmp_path / "missing", layers=(1,))
    meta = SSLFeatureExtractor(d, layers=(1,)).group_meta_fields()
    assert meta["frame_rate"] == 50.0 and meta["dim"] == 32 and meta["dtype"] == "float16"
    assert meta["model_checksum"].startswith("sha256:")
