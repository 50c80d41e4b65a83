"""The peer baseline of `fit_kmeans`: scikit-learn MiniBatchKMeans as fairseq configures it.

fairseq's `examples/hubert/simple_kmeans/learn_kmeans.py` (and the recipes derived from it)
loads every frame of the corpus into memory and runs MiniBatchKMeans with the settings below.
Kept with the benchmarks (not in the package) so that benchmarks and tests compare against
exactly that.
"""

from __future__ import annotations

import numpy as np


def fit_sklearn_mbkm(
    frames: np.ndarray,
    k: int,
    seed: int,
    *,
    n_init: int = 20,
    max_iter: int = 100,
    batch_size: int = 10000,
) -> np.ndarray:
    """The peer baseline: scikit-learn MiniBatchKMeans as fairseq's `learn_kmeans.py` runs it.

    fairseq's settings: k-means++ init, batch 10000, max_iter 100, n_init 20,
    max_no_improvement 100, reassignment_ratio 0, tol 0, compute_labels False, init_size default.

    Args:
        frames: `(n, D)` float32, all in memory (as fairseq has them).
    Returns:
        centroids `(k, D)` float32.
    """
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(
        n_clusters=k,
        init="k-means++",
        max_iter=max_iter,
        batch_size=batch_size,
        tol=0.0,
        max_no_improvement=100,
        n_init=n_init,
        reassignment_ratio=0.0,
        compute_labels=False,
        random_state=seed,
        verbose=0,
    )
    km.fit(frames)
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float32)
