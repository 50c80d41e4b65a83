"""Modality adapters: CTC compression on hand-made posteriors; padded batch == unpadded rows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from speechtok.errors import ConfigError
from speechtok.trainers.latent.adapters import AdapterConfig, FrameStack, StridedConv, build_adapter
from speechtok.trainers.latent.ctc_compress import ctc_compress

B_, A_, C_ = 0, 1, 2  # blank, label a, label c


def _posteriors(labels: list[int], blank_probs: list[float] | None = None, vocab: int = 3) -> torch.Tensor:
    """(1, T, V) log-probs whose argmax is `labels`; blank prob = `blank_probs` when given."""
    rows = []
    for t, lab in enumerate(labels):
        pb = blank_probs[t] if blank_probs else (0.9 if lab == B_ else 0.05)
        p = torch.full((vocab,), 0.0)
        p[B_] = pb
        rest = 1.0 - pb
        if lab == B_:
            p[1:] = rest / (vocab - 1)
        else:
            p[lab] = rest * 0.9
            others = [v for v in range(1, vocab) if v != lab]
            p[others] = rest * 0.1 / len(others)
        rows.append(p)
    return torch.stack(rows).log().unsqueeze(0)


LABELS = [B_, A_, A_, B_, B_, C_, C_, C_, B_]
X = torch.arange(len(LABELS), dtype=torch.float32).reshape(1, -1, 1).repeat(1, 1, 2)  # frame t = [t, t]
L = torch.tensor([len(LABELS)])


def test_ctc_remove_blank() -> None:
    y, n = ctc_compress(X, _posteriors(LABELS), L, strategy="remove_blank")
    assert n.tolist() == [5]
    assert y[0, :, 0].tolist() == [1, 2, 5, 6, 7]


def test_ctc_average_runs() -> None:
    y, n = ctc_compress(X, _posteriors(LABELS), L, strategy="average")
    # runs: [0] [1 2] [3 4] [5 6 7] [8]
    assert n.tolist() == [5]
    assert y[0, :, 0].tolist() == [0.0, 1.5, 3.5, 6.0, 8.0]


def test_ctc_threshold() -> None:
    bp = [0.99, 0.2, 0.97, 0.5, 0.96, 0.1, 0.3, 0.94, 0.999]
    labels = [B_ if p > 0.5 else A_ for p in bp]
    y, n = ctc_compress(X, _posteriors(labels, bp), L, strategy="threshold", threshold=0.95)
    assert n.tolist() == [5]  # drops frames 0, 2, 4, 8 (blank prob > 0.95); keeps 0.94
    kept = [t for t, p in enumerate(bp) if p <= 0.95]
    assert y[0, :, 0].tolist() == [float(t) for t in kept]


def test_ctc_all_blank_row_keeps_one_frame_and_padding_is_ignored() -> None:
    x = torch.randn(2, 6, 3)
    lp = _posteriors([B_] * 6, [0.99, 0.98, 0.97, 0.99, 0.6, 0.6])
    lp = torch.cat([lp, lp])
    y, n = ctc_compress(x, lp, torch.tensor([6, 3]), strategy="remove_blank")
    assert n.tolist() == [1, 1]
    assert torch.allclose(y[0, 0], x[0, 4]) and torch.allclose(y[1, 0], x[1, 2])  # least-blank valid frame
    with pytest.raises(ConfigError, match="ctc_strategy"):
        ctc_compress(x, lp, torch.tensor([6, 3]), strategy="bogus")


def test_length_arithmetic() -> None:
    fs = FrameStack(4, 8, k=3)
    _, n = fs(torch.randn(2, 10, 4), torch.tensor([10, 7]))
    assert n.tolist() == [4, 3]
    sc = StridedConv(4, 8, kernel=3, stride=2, num_layers=2)
    y, n = sc(torch.randn(2, 10, 4), torch.tensor([10, 7]))
    assert n.tolist() == [3, 2] and y.shape[1] == 3


class _Head(nn.Module):
    def __init__(self, d: int, v: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * 4  # sharp posteriors, so that runs and blanks occur


CONFIGS = [
    AdapterConfig(kind="stack", k=4, post="linear"),
    AdapterConfig(kind="stack", k=3, post="transformer"),
    AdapterConfig(kind="conv", stride=2, conv_layers=2, post="none"),
    AdapterConfig(kind="conv", kernel=5, stride=3, conv_layers=1, post="transformer"),
    AdapterConfig(kind="ctc", ctc_strategy="remove_blank", post="linear"),
    AdapterConfig(kind="ctc", ctc_strategy="average", post="transformer"),
    AdapterConfig(kind="ctc", ctc_strategy="threshold", ctc_threshold=0.5, post="linear"),
    AdapterConfig(kind="qformer", num_queries=3, window=7),
    AdapterConfig(kind="qformer", num_queries=5, window=0),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.kind}-{c.post}-{c.ctc_strategy if c.kind == 'ctc' else ''}")
def test_padded_batch_equals_unpadded_rows(cfg: AdapterConfig) -> None:
    torch.manual_seed(0)
    d_in, d_out = 12, 16
    adapter = build_adapter(cfg, d_in, d_out, ctc_head=_Head(d_in, 5), blank=0).eval()
    lengths = [23, 9, 16, 1]
    rows = [torch.randn(n, d_in) for n in lengths]
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    x[1, 9:] = 7.0  # junk in the padding must not matter
    with torch.no_grad():
        y, n = adapter(x, torch.tensor(lengths))
        assert y.shape[0] == 4 and y.shape[2] == d_out
        for b, row in enumerate(rows):
            y1, n1 = adapter(row.unsqueeze(0), torch.tensor([lengths[b]]))
            assert n[b].item() == n1.item() >= 1
            torch.testing.assert_close(y[b, : n[b]], y1[0, : n1[0]], atol=1e-5, rtol=1e-4)


def test_adapters_train_end_to_end_gradients() -> None:
    for cfg in CONFIGS:
        adapter = build_adapter(cfg, 12, 16, ctc_head=_Head(12, 5))
        x = torch.randn(2, 20, 12, requires_grad=True)
        y, n = adapter(x, torch.tensor([20, 11]))
        y.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, cfg
