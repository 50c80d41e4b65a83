"""Out-of-core k-means on speech features with faiss, resumable, saved without pickle.

`fit_kmeans(source, cfg, checkpoint_dir)` samples up to `cfg.frame_budget` frames uniformly over
a `FrameSource` (two passes, see `kmeans_sampling`; the corpus is never concatenated), optionally
reduces them with PCA and L2-normalises them (spherical k-means), then runs faiss k-means one
iteration at a time from the previous centroids (`faiss.Clustering` with `niter=1`), writing a
checkpoint after each iteration. A killed fit resumes from its last checkpoint and ends with the
same centroids as an uninterrupted one (faiss's iteration is a pure function of the data and the
centroids; the tests check this).

Subsampling, made explicit: faiss by default silently keeps only 256 points per centroid
(`max_points_per_centroid`). Here the frame budget is the only bound by default
(`max_points_per_centroid=None`: every sampled frame is used); set it to an integer to subsample
further, which is done once, deterministically by seed, before the first iteration.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from speechtok.errors import ConfigError, InputError, check_at_least
from speechtok.tokenizers.kmeans_checkpoint import (
    FitState,
    load_checkpoint,
    load_model_files,
    save_checkpoint,
    save_model_files,
)
from speechtok.tokenizers.kmeans_init import init_centroids
from speechtok.tokenizers.kmeans_sampling import FrameSource, sample_frames

__all__ = ["KMeansConfig", "KMeansModel", "fit_kmeans", "inertia_of"]

MAX_UNITS = 65535  # units are stored as uint16
METRICS = ("l2", "ip")
INITS = ("kmeans++", "random")


@dataclass(frozen=True, kw_only=True)
class KMeansConfig:
    """How to fit k-means.

    Attributes:
        k: number of centroids, 2..65535 (units are uint16).
        iterations: Lloyd iterations per restart.
        seed: seeds the frame sample, the initial centroids and any subsampling.
        frame_budget: at most this many frames are sampled from the corpus for training.
        restarts: independent runs from different random initialisations (faiss's `nredo`);
            the one with the best final objective is kept.
        spherical: L2-normalise frames and centroids (cosine k-means).
        pca_dim: reduce frames to this many dimensions with PCA (fit on the sample) first.
        max_points_per_centroid: None to train on every sampled frame; an integer to subsample
            to `k * max_points_per_centroid` frames (faiss's own default is 256, silently).
        metric: "l2" (squared Euclidean) or "ip" (inner product; needs `spherical=True`).
        init: "kmeans++" (greedy k-means++, as scikit-learn) or "random" (faiss's default).
        init_size: k-means++ runs on this many frames drawn from the training sample (at
            least k), like MiniBatchKMeans's `init_size`; None for all of them (slow).
    """

    k: int
    iterations: int = 20
    seed: int = 0
    frame_budget: int = 500_000
    restarts: int = 1
    spherical: bool = False
    pca_dim: int | None = None
    max_points_per_centroid: int | None = None
    metric: str = "l2"
    init: str = "kmeans++"
    init_size: int | None = 10_000

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        if not 2 <= self.k <= MAX_UNITS:
            raise ConfigError("k", self.k, f"must be in [2, {MAX_UNITS}] (units are uint16)")
        check_at_least(1, iterations=self.iterations)
        if self.frame_budget < self.k:
            raise ConfigError("frame_budget", self.frame_budget, f"must be >= k ({self.k})")
        check_at_least(1, restarts=self.restarts)
        if self.pca_dim is not None and self.pca_dim < 1:
            raise ConfigError("pca_dim", self.pca_dim, "must be >= 1 or None")
        if self.max_points_per_centroid is not None and self.max_points_per_centroid < 1:
            raise ConfigError(
                "max_points_per_centroid", self.max_points_per_centroid, "must be >= 1 or None"
            )
        if self.metric not in METRICS:
            raise ConfigError("metric", self.metric, f"must be one of {METRICS}")
        if self.init not in INITS:
            raise ConfigError("init", self.init, f"must be one of {INITS}")
        if self.init_size is not None and self.init_size < 1:
            raise ConfigError("init_size", self.init_size, "must be >= 1 or None")
        if self.metric == "ip" and not self.spherical:
            raise ConfigError("metric", self.metric, "may be 'ip' only with spherical=True")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KMeansConfig:
        return cls(**d)


class KMeansModel:
    """Fitted centroids plus the transform (PCA, normalisation) applied before assignment.

    Attributes:
        centroids: `(K, D')` float32, in the transformed space (D' = pca_dim or D).
        config: the `KMeansConfig` of the fit.
        dim: input feature dimension D.
        pca_matrix, pca_bias: `(D', D)` and `(D',)` float32, or None; `y = x @ A.T + b`.
        inertia_history: objective per iteration, one list per restart (faiss's `obj`: the
            sum over training frames of the squared distance, or the similarity for "ip", to
            the centroids *before* that iteration's update).
        feature_spec: the features the model expects (`FeatureSpec.to_dict()`), or None for
            models saved before it was recorded.
    """

    def __init__(
        self,
        *,
        centroids: np.ndarray,
        config: KMeansConfig,
        dim: int,
        pca_matrix: np.ndarray | None = None,
        pca_bias: np.ndarray | None = None,
        inertia_history: list[list[float]] | None = None,
        best_restart: int = 0,
        feature_fingerprint: str | None = None,
        sample_sha256: str | None = None,
        total_frames: int | None = None,
        n_train: int | None = None,
        feature_spec: dict[str, Any] | None = None,
    ) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.config = config
        self.dim = int(dim)
        self.pca_matrix = None if pca_matrix is None else np.ascontiguousarray(pca_matrix, np.float32)
        self.pca_bias = None if pca_bias is None else np.ascontiguousarray(pca_bias, np.float32)
        self.inertia_history = inertia_history or []
        self.best_restart = best_restart
        self.feature_fingerprint = feature_fingerprint
        self.sample_sha256 = sample_sha256
        self.total_frames = total_frames
        self.n_train = n_train
        self.feature_spec = feature_spec  # `speechtok.tokenizers.feature_spec.FeatureSpec` as a dict
        self._index: faiss.Index | None = None

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def transform(self, frames: np.ndarray) -> np.ndarray:
        """`(n, D)` float16/32 -> `(n, D')` float32 (PCA, then L2 normalisation if spherical)."""
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise InputError("frames", f"expected shape (n, {self.dim}), got {frames.shape}")
        x = np.ascontiguousarray(frames, dtype=np.float32)
        if self.pca_matrix is not None and self.pca_bias is not None:
            x = x @ self.pca_matrix.T + self.pca_bias
        if self.config.spherical:
            if x is frames:
                x = x.copy()
            faiss.normalize_L2(x)
        return x

    def _get_index(self) -> faiss.Index:
        if self._index is None:
            d = self.centroids.shape[1]
            index = faiss.IndexFlatIP(d) if self.config.metric == "ip" else faiss.IndexFlatL2(d)
            index.add(self.centroids)
            self._index = index
        return self._index

    def search(self, frames: np.ndarray, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of each frame, in batches of `batch_size` frames.

        Args:
            frames: `(n, D)` float16/float32.
        Returns:
            units `(n,)` uint16 and scores `(n,)` float32 (squared L2 distance, or inner product
            for metric "ip").
        """
        check_at_least(1, batch_size=batch_size)
        n = frames.shape[0]
        units = np.empty(n, dtype=np.uint16)
        scores = np.empty(n, dtype=np.float32)
        index = self._get_index()
        for s in range(0, n, batch_size):
            x = self.transform(frames[s : s + batch_size])
            dist, lab = index.search(x, 1)  # (b, 1) each
            units[s : s + len(x)] = lab[:, 0]
            scores[s : s + len(x)] = dist[:, 0]
        return units, scores

    def assign(self, frames: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Units of `frames` `(n, D)` float16/32 -> `(n,)` uint16, computed in batches."""
        return self.search(frames, batch_size)[0]

    def inertia(self, frames: np.ndarray, batch_size: int = 65536) -> float:
        """Sum over `frames` of the squared L2 distance to the nearest centroid (float64 sum)."""
        return inertia_of(self.transform(frames), self.centroids, batch_size)

    def checksum(self) -> str:
        """sha256 of the centroids, the PCA transform and the config: identifies the model."""
        h = hashlib.sha256()
        h.update(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        h.update(str(self.dim).encode())
        for a in (self.centroids, self.pca_matrix, self.pca_bias):
            if a is not None:
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).data.cast("B"))
        return h.hexdigest()

    def save(self, out_dir: str | Path) -> Path:
        """Writes `centroids.safetensors` + `kmeans.json` into `out_dir` (see kmeans_checkpoint)."""
        tensors = {"centroids": self.centroids}
        if self.pca_matrix is not None and self.pca_bias is not None:
            tensors["pca_matrix"] = self.pca_matrix
            tensors["pca_bias"] = self.pca_bias
        info = {
            "config": self.config.to_dict(),
            "dim": self.dim,
            "checksum": self.checksum(),
            "feature_fingerprint": self.feature_fingerprint,
            "sample_sha256": self.sample_sha256,
            "total_frames": self.total_frames,
            "n_train": self.n_train,
            "inertia_history": self.inertia_history,
            "best_restart": self.best_restart,
            "feature_spec": self.feature_spec,
        }
        return save_model_files(out_dir, tensors, info)

    @classmethod
    def load(cls, model_dir: str | Path) -> KMeansModel:
        """Reads a directory written by `save`; verifies the checksum."""
        tensors, info = load_model_files(model_dir)
        model = cls(
            centroids=tensors["centroids"],
            config=KMeansConfig.from_dict(info["config"]),
            dim=int(info["dim"]),
            pca_matrix=tensors.get("pca_matrix"),
            pca_bias=tensors.get("pca_bias"),
            inertia_history=info.get("inertia_history"),
            best_restart=int(info.get("best_restart", 0)),
            feature_fingerprint=info.get("feature_fingerprint"),
            sample_sha256=info.get("sample_sha256"),
            total_frames=info.get("total_frames"),
            n_train=info.get("n_train"),
            feature_spec=info.get("feature_spec"),
        )
        if model.checksum() != info.get("checksum"):
            raise InputError(
                str(model_dir), "checksum mismatch: the centroids or kmeans.json were altered"
            )
        return model


def inertia_of(x: np.ndarray, centroids: np.ndarray, batch_size: int = 65536) -> float:
    """Sum of squared L2 distances of `x` `(n, D)` float32 to the nearest of `centroids` `(K, D)`."""
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    total = 0.0
    for s in range(0, x.shape[0], batch_size):
        dist, _ = index.search(np.ascontiguousarray(x[s : s + batch_size], dtype=np.float32), 1)
        total += float(dist.astype(np.float64).sum())
    return total


def lloyd_iteration(x: np.ndarray, centroids: np.ndarray, cfg: KMeansConfig) -> tuple[np.ndarray, float]:
    """One faiss k-means iteration from `centroids` `(K, D)` over `x` `(n, D)` float32.

    Returns the updated centroids `(K, D)` float32 and faiss's objective for the centroids
    before the update. Empty clusters are re-seeded by faiss's split rule.
    """
    n, d = x.shape
    cp = faiss.ClusteringParameters()
    cp.niter = 1
    cp.nredo = 1
    cp.seed = cfg.seed
    cp.spherical = cfg.spherical
    cp.max_points_per_centroid = 1 << 30  # subsampling is done (or not) by fit_kmeans, once
    cp.min_points_per_centroid = 1  # fit_kmeans warns once instead of faiss on every call
    cp.verbose = False
    clus = faiss.Clustering(d, cfg.k, cp)
    faiss.copy_array_to_vector(np.ascontiguousarray(centroids, np.float32).ravel(), clus.centroids)
    index = faiss.IndexFlatIP(d) if cfg.metric == "ip" else faiss.IndexFlatL2(d)
    clus.train(x, index)
    stats: Any = clus.iteration_stats
    obj = float(stats.at(stats.size() - 1).obj)
    return faiss.vector_float_to_array(clus.centroids).reshape(cfg.k, d), obj


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


def _prepare(
    x: np.ndarray, cfg: KMeansConfig
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """PCA, normalisation and explicit subsampling of the training sample."""
    a = b = None
    if cfg.pca_dim is not None:
        if cfg.pca_dim > x.shape[1]:
            raise ConfigError("pca_dim", cfg.pca_dim, f"must be <= the feature dim {x.shape[1]}")
        pca = faiss.PCAMatrix(x.shape[1], cfg.pca_dim)
        pca.train(x)
        a = faiss.vector_to_array(pca.A).reshape(cfg.pca_dim, x.shape[1]).astype(np.float32)
        b = faiss.vector_to_array(pca.b).astype(np.float32)
        x = pca.apply(x)  # (n, pca_dim)
    if cfg.spherical:
        faiss.normalize_L2(x)
    mppc = cfg.max_points_per_centroid
    if mppc is not None and x.shape[0] > cfg.k * mppc:
        keep = np.sort(_rng(cfg.seed, 2).choice(x.shape[0], cfg.k * mppc, replace=False))
        x = np.ascontiguousarray(x[keep])
    return x, a, b


def fit_kmeans(
    source: FrameSource,
    cfg: KMeansConfig,
    checkpoint_dir: str | Path | None = None,
    *,
    on_iteration: Callable[[int, int, float], None] | None = None,
) -> KMeansModel:
    """Fits k-means on frames sampled from `source`; resumable through `checkpoint_dir`.

    Args:
        source: a `FrameSource` yielding `(n_i, D)` float16/float32 arrays.
        cfg: the `KMeansConfig` (validated here).
        checkpoint_dir: where to checkpoint after every iteration; an existing checkpoint of the
            same config and frame sample is resumed (one of another is refused).
        on_iteration: called as `(restart, iteration, objective)` after each checkpoint.
    Returns:
        the `KMeansModel` of the best restart.
    """
    cfg.validate()
    sample = sample_frames(source, cfg.frame_budget, cfg.seed)
    sample_sha, total_frames = sample.sha256, sample.total_frames
    n_sampled, dim = sample.frames.shape
    if n_sampled < cfg.k:
        raise ConfigError(
            "k", cfg.k, f"must be <= the number of frames in the corpus ({n_sampled}); lower k"
        )
    x, pca_a, pca_b = _prepare(sample.frames, cfg)
    del sample  # only the prepared frames (possibly the same array) are kept
    n = x.shape[0]
    if n < 39 * cfg.k:
        warnings.warn(
            f"k-means on {n} frames for k={cfg.k}: fewer than 39 frames per centroid; "
            "centroids will be noisy (raise frame_budget or lower k)",
            stacklevel=2,
        )
    state = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if state is None:
        state = FitState(config=cfg.to_dict(), sample_sha256=sample_sha)
    elif state.config != cfg.to_dict() or state.sample_sha256 != sample_sha:
        raise InputError(
            str(checkpoint_dir),
            "holds a checkpoint of another k-means config or frame sample; "
            "use a new checkpoint_dir or delete it",
        )
    lower_is_better = cfg.metric == "l2"
    while not state.done:
        if state.centroids is None or state.iteration == 0:
            rng = _rng(cfg.seed, 1, state.restart)
            state.centroids = init_centroids(x, cfg.k, cfg.init, cfg.init_size, rng)
            if cfg.spherical:
                faiss.normalize_L2(state.centroids)
            state.iteration, state.history = 0, []
        for it in range(state.iteration, cfg.iterations):
            state.centroids, obj = lloyd_iteration(x, state.centroids, cfg)
            state.history.append(obj)
            state.iteration = it + 1
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, state)
            if on_iteration is not None:
                on_iteration(state.restart, it, obj)
        final = state.history[-1]
        best = state.histories[state.best_restart][-1] if state.best_restart >= 0 else None
        if best is None or (final < best if lower_is_better else final > best):
            state.best_restart, state.best_centroids = state.restart, state.centroids
        state.histories.append(state.history)
        state.restart += 1
        state.iteration, state.history, state.centroids = 0, [], None
        state.done = state.restart >= cfg.restarts
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, state)
    if state.best_centroids is None:  # pragma: no cover - done implies a finished restart
        raise InputError(str(checkpoint_dir), "checkpoint is done but holds no centroids")
    return KMeansModel(
        centroids=state.best_centroids,
        config=cfg,
        dim=dim,
        pca_matrix=pca_a,
        pca_bias=pca_b,
        inertia_history=state.histories,
        best_restart=state.best_restart,
        feature_fingerprint=source.fingerprint(),
        sample_sha256=sample_sha,
        total_frames=total_frames,
        n_train=n,
    )
