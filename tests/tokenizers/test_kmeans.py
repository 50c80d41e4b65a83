"""k-means on generated data: relative assertions, determinism, resume, safe files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.kmeans_baseline import fit_sklearn_mbkm
from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.kmeans import (
    KMeansConfig,
    KMeansModel,
    fit_kmeans,
    inertia_of,
)
from speechtok.tokenizers.kmeans_sampling import ArrayFrameSource


def mixture(n: int, d: int = 16, centers: int = 40, seed: int = 0) -> np.ndarray:
    """`(n, d)` float32 from a Gaussian mixture with `centers` components."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centers, d)).astype(np.float32) * 4
    lab = rng.integers(0, centers, n)
    return (means[lab] + rng.standard_normal((n, d)).astype(np.float32)).astype(np.float32)


def cuts(x: np.ndarray, seed: int = 1) -> list[np.ndarray]:
    """Splits `x` into cut-like arrays of random lengths (float16, as shards store them)."""
    rng = np.random.default_rng(seed)
    cuts_, s = [], 0
    while s < len(x):
        n = int(rng.integers(20, 200))
        cuts_.append(x[s : s + n].astype(np.float16))
        s += n
    return cuts_


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return mixture(6000)


def test_objective_decreases_and_more_centroids_help(data: np.ndarray) -> None:
    src = ArrayFrameSource(cuts(data))
    m32 = fit_kmeans(src, KMeansConfig(k=32, iterations=10, frame_budget=6000))
    m64 = fit_kmeans(src, KMeansConfig(k=64, iterations=10, frame_budget=6000))
    hist = m32.inertia_history[0]
    assert hist[-1] < hist[0]
    assert all(b <= a * 1.0001 for a, b in zip(hist, hist[1:], strict=False))
    assert m64.inertia(data) < m32.inertia(data)
    units = m64.assign(data)
    assert units.dtype == np.uint16 and units.shape == (len(data),) and units.max() < 64
    assert np.array_equal(m64.assign(data, batch_size=777), units)


def test_no_worse_than_sklearn_minibatch(data: np.ndarray) -> None:
    theirs = fit_sklearn_mbkm(data, 32, seed=0, n_init=3, max_iter=20, batch_size=1000)
    ours = fit_kmeans(ArrayFrameSource([data]), KMeansConfig(k=32, iterations=20, frame_budget=6000, restarts=3))
    assert ours.inertia(data) <= 1.1 * inertia_of(data, theirs)


def test_deterministic_by_seed(data: np.ndarray) -> None:
    cfg = KMeansConfig(k=16, iterations=5, frame_budget=3000, seed=7)
    a = fit_kmeans(ArrayFrameSource(cuts(data)), cfg)
    b = fit_kmeans(ArrayFrameSource(cuts(data)), cfg)
    c = fit_kmeans(ArrayFrameSource(cuts(data)), KMeansConfig(k=16, iterations=5, frame_budget=3000, seed=8))
    assert a.checksum() == b.checksum()
    assert np.array_equal(a.centroids, b.centroids)
    assert a.checksum() != c.checksum()


class Killed(Exception):
    pass


@pytest.mark.parametrize("restarts", [1, 2])
def test_resume_equals_uninterrupted(data: np.ndarray, tmp_path, restarts: int) -> None:
    cfg = KMeansConfig(k=24, iterations=6, frame_budget=4000, restarts=restarts, seed=3)
    src = ArrayFrameSource(cuts(data))
    full = fit_kmeans(src, cfg, tmp_path / "full")
    calls = []

    def kill_at(restart: int, it: int, obj: float) -> None:
        calls.append((restart, it))
        if (restart, it) == (restarts - 1, 3):
            raise Killed

    with pytest.raises(Killed):
        fit_kmeans(src, cfg, tmp_path / "ckpt", on_iteration=kill_at)
    seen = []
    resumed = fit_kmeans(src, cfg, tmp_path / "ckpt", on_iteration=lambda r, i, o: seen.append((r, i)))
    assert seen[0] == (restarts - 1, 4)  # continued after the last checkpoint, no iteration redone
    assert np.array_equal(resumed.centroids, full.centroids)
    assert resumed.inertia_history == full.inertia_history
    # a finished checkpoint returns immediately with the same model
    again = fit_kmeans(src, cfg, tmp_path / "ckpt", on_iteration=lambda r, i, o: seen.append((r, i)))
    assert again.checksum() == full.checksum() and len(seen) == 6 - 4


def test_checkpoint_of_other_config_is_refused(data: np.ndarray, tmp_path) -> None:
    src = ArrayFrameSource([data])
    fit_kmeans(src, KMeansConfig(k=8, iterations=2, frame_budget=2000), tmp_path)
    with pytest.raises(InputError, match="another k-means config"):
        fit_kmeans(src, KMeansConfig(k=9, iterations=2, frame_budget=2000), tmp_path)


def test_save_load_roundtrip_and_tamper(data: np.ndarray, tmp_path) -> None:
    cfg = KMeansConfig(k=12, iterations=3, frame_budget=3000, pca_dim=8)
    model = fit_kmeans(ArrayFrameSource([data], fingerprint="feats-abc"), cfg)
    model.save(tmp_path / "km")
    loaded = KMeansModel.load(tmp_path / "km")
    assert loaded.checksum() == model.checksum()
    assert loaded.feature_fingerprint == "feats-abc"
    assert np.array_equal(loaded.assign(data), model.assign(data))
    info = json.loads((tmp_path / "km" / "kmeans.json").read_text())
    assert info["config"]["k"] == 12 and len(info["inertia_history"][0]) == 3
    info["config"]["spherical"] = True
    (tmp_path / "km" / "kmeans.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="checksum"):
        KMeansModel.load(tmp_path / "km")


def test_spherical_ip_and_pca(data: np.ndarray) -> None:
    cfg = KMeansConfig(k=16, iterations=5, frame_budget=4000, spherical=True, metric="ip")
    model = fit_kmeans(ArrayFrameSource([data]), cfg)
    assert np.allclose(np.linalg.norm(model.centroids, axis=1), 1.0, atol=1e-4)
    hist = model.inertia_history[0]
    assert hist[-1] > hist[0]  # similarity objective increases
    # inner product on unit vectors picks the same centroid as L2
    x = model.transform(data)
    l2 = np.argmin(((x[:, None, :] - model.centroids[None]) ** 2).sum(-1), axis=1)
    assert (model.assign(data) == l2).mean() > 0.999
    pca = fit_kmeans(ArrayFrameSource([data]), KMeansConfig(k=16, iterations=5, frame_budget=4000, pca_dim=6))
    assert pca.centroids.shape == (16, 6) and pca.pca_matrix is not None
    assert pca.pca_matrix.shape == (6, 16)


def test_explicit_subsampling(data: np.ndarray) -> None:
    cfg = KMeansConfig(k=10, iterations=2, frame_budget=6000, max_points_per_centroid=50)
    assert fit_kmeans(ArrayFrameSource([data]), cfg).n_train == 500
    assert fit_kmeans(ArrayFrameSource([data]), KMeansConfig(k=10, iterations=2, frame_budget=6000)).n_train == 6000


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 1}, "k"),
        ({"k": 70000, "frame_budget": 10**6}, "k"),
        ({"k": 8, "iterations": 0}, "iterations"),
        ({"k": 8, "frame_budget": 4}, "frame_budget"),
        ({"k": 8, "metric": "cosine"}, "metric"),
        ({"k": 8, "metric": "ip"}, "metric"),
        ({"k": 8, "restarts": 0}, "restarts"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        KMeansConfig(**kwargs).validate()
    assert e.value.field == field and f"`{field}`" in str(e.value)


def test_fewer_frames_than_k() -> None:
    with pytest.raises(ConfigError, match=r"number of frames in the corpus \(50\)"):
        fit_kmeans(ArrayFrameSource([mixture(50)]), KMeansConfig(k=64, frame_budget=1000))


CHILD = """
import sys, time
import numpy as np
from speechtok.tokenizers.kmeans import KMeansConfig, fit_kmeans
from speechtok.tokenizers.kmeans_sampling import NpyFrameSource
cfg = KMeansConfig(k=24, iterations=12, frame_budget=4000, seed=3)
fit_kmeans(NpyFrameSource([sys.argv[1]]), cfg, sys.argv[2], on_iteration=lambda r, i, o: time.sleep(0.3))
"""


def test_sigkilled_fit_resumes_to_the_same_centroids(data: np.ndarray, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from speechtok.tokenizers.kmeans_checkpoint import load_checkpoint
    from speechtok.tokenizers.kmeans_sampling import NpyFrameSource

    np.save(tmp_path / "x.npy", data)
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "x.npy"), str(ckpt)])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            state = load_checkpoint(ckpt)
        except Exception:  # noqa: BLE001 - the file may be mid-rename on some filesystems
            state = None
        if state is not None and state.iteration >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(ckpt)
    assert state is not None and not state.done and 3 <= state.iteration < 12
    cfg = KMeansConfig(k=24, iterations=12, frame_budget=4000, seed=3)
    src = NpyFrameSource([tmp_path / "x.npy"])
    resumed = fit_kmeans(src, cfg, ckpt)
    full = fit_kmeans(src, cfg)
    assert np.array_equal(resumed.centroids, full.centroids)
    assert resumed.inertia_history == full.inertia_history
