"""How good are these units? Usage, dedup rate, purity / PNMI against labels, a bag-of-units probe.

Definitions (HuBERT, Hsu et al. 2021, section IV-C), from the joint distribution p(y, z) of a
frame's label y (e.g. its phone) and its unit z over all labelled frames:
- phone purity   = sum_z max_y p(y, z)   (how well a unit predicts the label),
- cluster purity = sum_y max_z p(y, z)   (how concentrated a label is on one unit),
- PNMI           = I(y; z) / H(y)        (share of label uncertainty the units remove).

Probe: each utterance becomes its bag of units (L1-normalised histogram, square-rooted), a
logistic regression predicts an utterance label (e.g. the FSDD digit) on a group-disjoint split
(e.g. test speakers unseen in training). The random-assignment baseline redraws every frame's
unit i.i.d. from the corpus's unit distribution (same lengths and usage, no content), so
whatever it scores above chance comes from length alone.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speechtok import atomic
from speechtok.errors import InputError
from speechtok.tokenizers.units import dedup


@dataclass(kw_only=True)
class UnitReport:
    """Unit-quality figures; None where the input needed for a figure was not given."""

    k: int
    num_utterances: int
    num_frames: int
    used_clusters: int
    dead_clusters: int
    entropy_bits: float
    perplexity: float
    frame_rate: float | None = None
    dedup_ratio: float  # units after dedup / units before
    unit_rate_hz: float | None = None  # units per second before dedup (= frame rate)
    dedup_unit_rate_hz: float | None = None
    mean_run_frames: float
    phone_purity: float | None = None
    cluster_purity: float | None = None
    pnmi: float | None = None
    num_labelled_frames: int | None = None
    probe_accuracy: float | None = None
    probe_accuracy_random: float | None = None
    probe_chance: float | None = None
    probe_test_groups: list[str] | None = None
    counts: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def usage_counts(units: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Frames per unit `(k,)` int64 over all sequences; raises on a unit >= k."""
    counts = np.zeros(k, np.int64)
    for i, u in enumerate(units):
        if u.size and int(u.max()) >= k:
            raise InputError(f"utterance {i}", f"has unit {int(u.max())} >= k={k}")
        counts += np.bincount(u.astype(np.int64), minlength=k)
    return counts


def entropy_bits(counts: np.ndarray) -> float:
    """Entropy in bits of the distribution proportional to `counts`."""
    p = counts[counts > 0] / max(int(counts.sum()), 1)
    return float(-(p * np.log2(p)).sum())


def label_metrics(
    units: Sequence[np.ndarray], labels: Sequence[np.ndarray]
) -> tuple[float, float, float, int]:
    """(phone purity, cluster purity, PNMI, frames) from per-frame units and labels.

    Args:
        units: per utterance `(T_i,)` integer units.
        labels: per utterance `(T_i,)` labels (ints or strings); frames labelled with a negative
            int or the empty string are ignored. Lengths may differ by a frame or two (different
            framing); the shorter length is used.
    """
    ys, zs = [], []
    for i, (u, y) in enumerate(zip(units, labels, strict=True)):
        n = min(len(u), len(y))
        if abs(len(u) - len(y)) > 2:
            raise InputError(f"utterance {i}", f"has {len(u)} units but {len(y)} frame labels")
        ys.append(np.asarray(y)[:n])
        zs.append(np.asarray(u)[:n].astype(np.int64))
    y_all = np.concatenate(ys) if ys else np.zeros(0)
    z_all = np.concatenate(zs) if zs else np.zeros(0, np.int64)
    keep = (y_all != "") if y_all.dtype.kind in "US" else (y_all >= 0)
    y_all, z_all = y_all[keep], z_all[keep]
    if y_all.size == 0:
        raise InputError("labels", "no labelled frames; cannot compute purity or PNMI")
    _, y_idx = np.unique(y_all, return_inverse=True)
    _, z_idx = np.unique(z_all, return_inverse=True)
    joint = np.zeros((y_idx.max() + 1, z_idx.max() + 1))
    np.add.at(joint, (y_idx, z_idx), 1.0)
    pxy = joint / joint.sum()  # (labels, units)
    py, pz = pxy.sum(1), pxy.sum(0)
    nz = pxy > 0
    mi = float((pxy[nz] * np.log(pxy[nz] / np.outer(py, pz)[nz])).sum())
    hy = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    pnmi = mi / hy if hy > 0 else 1.0
    return float(pxy.max(0).sum()), float(pxy.max(1).sum()), pnmi, int(y_all.size)


def bag_of_units(units: Sequence[np.ndarray], k: int) -> np.ndarray:
    """`(N, k)` float32: square root of each utterance's L1-normalised unit histogram."""
    x = np.zeros((len(units), k), np.float32)
    for i, u in enumerate(units):
        if u.size:
            h = np.bincount(u.astype(np.int64), minlength=k)[:k]
            x[i] = np.sqrt(h / h.sum())
    return x


def probe_accuracy(
    units: Sequence[np.ndarray],
    labels: Sequence[str],
    groups: Sequence[str],
    k: int,
    *,
    seed: int = 0,
    test_fraction: float = 1 / 3,
) -> tuple[float, float, list[str]]:
    """Bag-of-units logistic-regression probe on a group-disjoint split.

    Returns (accuracy, accuracy with randomly reassigned units, test groups). The test groups
    are `ceil(test_fraction * n_groups)` groups drawn by `seed`.
    """
    # lazy: sklearn only for the probe
    from sklearn.linear_model import LogisticRegression

    if not len(units) == len(labels) == len(groups):
        raise InputError("probe", f"{len(units)} utterances, {len(labels)} labels, {len(groups)} groups")
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        raise InputError("probe", f"needs >= 2 groups (speakers) for a disjoint split, got {uniq}")
    rng = np.random.default_rng(seed)
    n_test = min(len(uniq) - 1, max(1, math.ceil(test_fraction * len(uniq))))
    test_groups = sorted(rng.permutation(uniq)[:n_test].tolist())
    is_test = np.isin(np.asarray(groups), test_groups)
    y = np.asarray(labels)
    if len(set(y[~is_test].tolist())) < 2:
        raise InputError("probe", f"the training speakers (all but {test_groups}) cover < 2 labels")

    def fit_score(seqs: Sequence[np.ndarray]) -> float:
        x = bag_of_units(seqs, k)
        clf = LogisticRegression(C=10.0, max_iter=2000)
        clf.fit(x[~is_test], y[~is_test])
        return float((clf.predict(x[is_test]) == y[is_test]).mean())

    counts = usage_counts(units, k)
    p = counts / counts.sum()
    rand = [rng.choice(k, size=len(u), p=p).astype(np.uint16) for u in units]
    return fit_score(units), fit_score(rand), test_groups


def unit_report(
    units: Sequence[np.ndarray],
    k: int,
    *,
    frame_rate: float | None = None,
    frame_labels: Sequence[np.ndarray] | None = None,
    utterance_labels: Sequence[str] | None = None,
    utterance_groups: Sequence[str] | None = None,
    seed: int = 0,
) -> UnitReport:
    """Computes the unit-quality figures.

    Args:
        units: per utterance `(T_i,)` uint16 frame-level units (not deduplicated).
        k: vocabulary size.
        frame_rate: frames per second (for unit rates), or None.
        frame_labels: per utterance `(T_i,)` frame labels for purity / PNMI, or None.
        utterance_labels, utterance_groups: per utterance class and group (speaker) for the
            probe, or None.
        seed: seeds the probe's split and the random baseline.
    """
    if not units:
        raise InputError("units", "are empty; nothing to report on")
    counts = usage_counts(units, k)
    n_frames = int(counts.sum())
    n_dedup = sum(len(dedup(u)[0]) for u in units)
    ent = entropy_bits(counts)
    rep = UnitReport(
        k=k, num_utterances=len(units), num_frames=n_frames,
        used_clusters=int((counts > 0).sum()), dead_clusters=int((counts == 0).sum()),
        entropy_bits=ent, perplexity=float(2.0**ent), frame_rate=frame_rate,
        dedup_ratio=n_dedup / max(n_frames, 1), mean_run_frames=n_frames / max(n_dedup, 1),
        unit_rate_hz=frame_rate, counts=counts.tolist(),
        dedup_unit_rate_hz=None if frame_rate is None else frame_rate * n_dedup / max(n_frames, 1),
    )
    if frame_labels is not None:
        rep.phone_purity, rep.cluster_purity, rep.pnmi, rep.num_labelled_frames = label_metrics(
            units, frame_labels
        )
    if utterance_labels is not None and utterance_groups is not None:
        rep.probe_accuracy, rep.probe_accuracy_random, rep.probe_test_groups = probe_accuracy(
            units, utterance_labels, utterance_groups, k, seed=seed
        )
        rep.probe_chance = 1.0 / len(set(utterance_labels))
    return rep


def _fmt(v: object) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_report(report: UnitReport, out_dir: str | Path, title: str = "Unit quality") -> Path:
    """Writes `report.json`, `report.md` and `usage.png` into `out_dir`; returns report.md."""
    # lazy: matplotlib takes most of a second to import; only the figure needs it
    import matplotlib

    matplotlib.use("Agg")
    # lazy: as above, once the backend is chosen
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    atomic.write_text(out / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    counts = np.asarray(report.counts)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].bar(np.arange(report.k), counts, width=1.0)
    axes[0].set(title="frames per unit", xlabel="unit id", ylabel="frames")
    ranked = np.sort(counts)[::-1]
    axes[1].semilogy(np.arange(1, report.k + 1), np.maximum(ranked, 0.5))
    axes[1].set(title="usage by rank", xlabel="rank", ylabel="frames (log)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(out / "usage.png", buf.getvalue())
    rows = [
        ("units (k)", report.k), ("utterances", report.num_utterances),
        ("frames", report.num_frames), ("used units", report.used_clusters),
        ("dead units", report.dead_clusters), ("usage entropy (bits)", report.entropy_bits),
        ("usage perplexity", report.perplexity), ("unit rate before dedup (Hz)", report.unit_rate_hz),
        ("unit rate after dedup (Hz)", report.dedup_unit_rate_hz),
        ("dedup ratio (after/before)", report.dedup_ratio),
        ("mean run length (frames)", report.mean_run_frames),
        ("phone purity", report.phone_purity), ("cluster purity", report.cluster_purity),
        ("PNMI", report.pnmi), ("labelled frames", report.num_labelled_frames),
        ("probe accuracy", report.probe_accuracy),
        ("probe accuracy, random units", report.probe_accuracy_random),
        ("probe chance", report.probe_chance),
        ("probe test groups", None if report.probe_test_groups is None else ", ".join(report.probe_test_groups)),
    ]
    md = [f"# {title}", "", "| figure | value |", "|---|---|"]
    md += [f"| {name} | {_fmt(v)} |" for name, v in rows]
    md += ["", "![unit usage](usage.png)", ""]
    atomic.write_text(out / "report.md", "\n".join(md))
    return out / "report.md"
