"""Unit-quality report: usage, purity/PNMI definitions, probe vs random units, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechtok.errors import InputError
from speechtok.tokenizers.unit_report import (
    entropy_bits,
    label_metrics,
    probe_accuracy,
    unit_report,
    write_report,
)


def test_usage_dead_clusters_entropy_and_dedup() -> None:
    units = [np.array([0, 0, 1, 1], np.uint16), np.array([2, 2, 2, 2], np.uint16)]
    rep = unit_report(units, k=5, frame_rate=50.0)
    assert rep.counts == [2, 2, 4, 0, 0] and rep.dead_clusters == 2 and rep.used_clusters == 3
    assert rep.entropy_bits == pytest.approx(1.5) and rep.perplexity == pytest.approx(2**1.5)
    assert rep.dedup_ratio == pytest.approx(3 / 8) and rep.dedup_unit_rate_hz == pytest.approx(50 * 3 / 8)
    assert entropy_bits(np.array([1, 1, 1, 1])) == pytest.approx(2.0)


def test_purity_and_pnmi_definitions() -> None:
    # units that copy the labels: everything is 1
    y = [np.array([0, 0, 1, 1, 2, 2])]
    assert label_metrics([np.array([5, 5, 3, 3, 9, 9])], y)[:3] == pytest.approx((1.0, 1.0, 1.0))
    # one unit for everything: no information
    pp, cp, pnmi, n = label_metrics([np.zeros(6, np.uint16)], y)
    assert pnmi == pytest.approx(0.0) and pp == pytest.approx(1 / 3) and cp == pytest.approx(1.0)
    # each label split over two units: phone purity 1, cluster purity 1/2, PNMI still 1
    pp, cp, pnmi, n = label_metrics([np.array([0, 1, 2, 3, 4, 5])], y)
    assert (pp, cp, pnmi, n) == pytest.approx((1.0, 0.5, 1.0, 6))
    # string labels, unlabelled frames ignored
    pp, cp, pnmi, n = label_metrics([np.array([0, 0, 1, 1])], [np.array(["a", "", "b", "b"])])
    assert n == 3 and pnmi == pytest.approx(1.0)
    with pytest.raises(InputError, match="frame labels"):
        label_metrics([np.zeros(10, np.uint16)], [np.zeros(3, int)])


def synthetic_digits(n_per: int = 30, k: int = 40, seed: int = 0):
    """Utterances whose unit distribution depends on the class; 4 speakers."""
    rng = np.random.default_rng(seed)
    protos = rng.dirichlet(np.full(k, 0.3), size=5)
    units, labels, groups = [], [], []
    for c in range(5):
        for i in range(n_per):
            units.append(rng.choice(k, size=int(rng.integers(30, 80)), p=protos[c]).astype(np.uint16))
            labels.append(str(c))
            groups.append(f"spk{i % 4}")
    return units, labels, groups


def test_probe_beats_random_assignment() -> None:
    units, labels, groups = synthetic_digits()
    acc, acc_rand, test_groups = probe_accuracy(units, labels, groups, 40, seed=0)
    assert len(test_groups) == 2 and acc > 0.9 and acc_rand < 0.5
    with pytest.raises(InputError, match="groups"):
        probe_accuracy(units, labels, ["one"] * len(units), 40)


def test_write_report_files(tmp_path) -> None:
    units, labels, groups = synthetic_digits(n_per=8)
    frame_labels = [u // 8 for u in units]
    rep = unit_report(units, 40, frame_rate=50.0, frame_labels=frame_labels,
                      utterance_labels=labels, utterance_groups=groups)
    md = write_report(rep, tmp_path / "rep")
    text = md.read_text()
    assert "| PNMI |" in text and "usage.png" in text
    assert (tmp_path / "rep" / "usage.png").stat().st_size > 1000
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["phone_purity"] == pytest.approx(1.0) and doc["probe_chance"] == pytest.approx(0.2)
