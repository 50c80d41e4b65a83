"""CTC posteriors with a tiny random torch model; batching helpers; model checksums."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechtok.errors import ConfigError, InputError
from speechtok.features.batching import chunk_spans, exact_length_buckets, padded_buckets
from speechtok.features.checksum import model_checksum, tensor_checksum
from speechtok.features.ctc_posteriors import (
    CTCPosteriorConfig,
    ctc_group_meta_fields,
    ctc_log_posteriors,
)


class TinyCTC(torch.nn.Module):
    """Conv subsampling by 2 (causal per frame pair) + linear head; pads never leak in."""

    def __init__(self, dim: int = 8, vocab: int = 6) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(2 * dim, vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, f = x.shape
        x = torch.nn.functional.pad(x, (0, 0, 0, t % 2)).reshape(b, -1, 2 * f)  # (B, T/2, 2F)
        return self.proj(x), (lengths + 1) // 2


def test_ctc_posteriors_batched_equal_single_and_normalised() -> None:
    torch.manual_seed(0)
    model = TinyCTC()
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 7, 20, 33, 0, 20)]
    cfg = CTCPosteriorConfig(blank=0, max_batch_frames=64)
    out = ctc_log_posteriors(model, feats, cfg)
    assert [o.shape for o in out] == [(1, 6), (4, 6), (10, 6), (17, 6), (0, 6), (10, 6)]
    assert all(o.dtype == np.float16 for o in out)
    for f, o in zip(feats, out, strict=True):
        if len(f):
            np.testing.assert_allclose(np.exp(o.astype(np.float64)).sum(1), 1.0, atol=5e-3)
            np.testing.assert_allclose(o, ctc_log_posteriors(model, [f], cfg)[0], atol=1e-3)
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.from_numpy(feats[3])[None], torch.tensor([33]))[0], -1)[0]
    np.testing.assert_allclose(out[3].astype(np.float32), ref.numpy(), atol=1e-2)
    meta = ctc_group_meta_fields(model, input_frame_rate=100.0, subsampling=2, vocab_size=6)
    assert meta["frame_rate"] == 50.0 and meta["model_checksum"].startswith("sha256:")


def test_ctc_plain_logits_and_errors() -> None:
    def model(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return x[..., :3] * 2.0  # (B, T, 3), no subsampling, no lengths

    feats = [np.ones((5, 4), np.float32), np.zeros((2, 4), np.float32)]
    out = ctc_log_posteriors(model, feats, CTCPosteriorConfig(dtype="float32"))
    assert [o.shape for o in out] == [(5, 3), (2, 3)]
    with pytest.raises(ConfigError, match="blank"):
        ctc_log_posteriors(model, feats, CTCPosteriorConfig(blank=3))
    with pytest.raises(InputError, match="dimension"):
        ctc_log_posteriors(model, [np.ones((5, 4)), np.ones((5, 5))])


def test_exact_length_buckets() -> None:
    lengths = [5, 3, 5, 5, 3, 9]
    batches = exact_length_buckets(lengths, max_batch_samples=10)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)
    assert all(len(b) * lengths[b[0]] <= 10 or len(b) == 1 for b in batches)


@given(st.lists(st.integers(1, 1000), min_size=1, max_size=50), st.integers(1, 3000))
@settings(max_examples=50, deadline=None)
def test_padded_buckets_cover_and_respect_budget(lengths: list[int], budget: int) -> None:
    batches = padded_buckets(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget


@given(st.integers(0, 200_000), st.integers(1, 20), st.integers(1, 5))
@settings(max_examples=100, deadline=None)
def test_chunk_spans_tile_the_frames(samples: int, chunk_hops: int, overlap_hops: int) -> None:
    hop = 320
    frames = max(0, (samples - 400) // hop + 1)
    spans = chunk_spans(samples, frames, chunk=chunk_hops * hop + 17, overlap=overlap_hops * hop - 5, hop=hop)
    covered = 0
    for sp in spans:
        assert sp.frame_offset == covered
        assert 0 <= sp.start < sp.stop <= samples or samples == 0
        assert sp.start % hop == 0
        chunk_frames = max(0, (sp.stop - sp.start - 400) // hop + 1)
        assert sp.keep_to <= chunk_frames or len(spans) == 1
        assert sp.frame_offset * hop == sp.start + sp.keep_from * hop or len(spans) == 1
        covered += sp.keep_to - sp.keep_from
    assert covered == frames


def test_model_checksum(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "a" / "README.md").write_text("ignored")
    first = model_checksum(tmp_path / "a")
    (tmp_path / "a" / "README.md").write_text("still ignored")
    assert model_checksum(tmp_path / "a") == first
    (tmp_path / "a" / "model.safetensors").write_bytes(b"weightz")
    assert model_checksum(tmp_path / "a") != first
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="no weight file"):
        model_checksum(tmp_path / "b")
    m = torch.nn.Linear(2, 2)
    assert tensor_checksum(m.state_dict()) == tensor_checksum(m.state_dict())
    with torch.no_grad():
        m.weight[0, 0] += 1
    assert tensor_checksum(m.state_dict()) != tensor_checksum(
        {k: v.clone() for k, v in torch.nn.Linear(2, 2).state_dict().items()})
