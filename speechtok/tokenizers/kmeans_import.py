"""Loading a k-means model to apply: a `KMeansModel.save` directory, or centroids in ``.npy``.

``.npy`` is the form to which fairseq k-means models (scikit-learn ``MiniBatchKMeans`` pickles
written by ``learn_kmeans.py``) are converted outside speechtok::

    np.save("km500.npy", joblib.load("km500.bin").cluster_centers_.astype("float32"))

Only that array is read here (``allow_pickle=False``); the features it expects cannot be read
from it, so they are given explicitly as a `FeatureSpec`. Assignment is nearest centroid in
squared L2 (fairseq's ``ApplyKmeans``), or cosine with ``spherical=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechtok.errors import ConfigError, InputError
from speechtok.tokenizers.feature_spec import FeatureSpec
from speechtok.tokenizers.kmeans import MAX_UNITS, KMeansConfig, KMeansModel


def import_npy_centroids(path: str | Path, spec: FeatureSpec, *, spherical: bool = False) -> KMeansModel:
    """A `KMeansModel` from centroids `(K, D)` float in a ``.npy`` file (no pickle is read).

    Args:
        path: the ``.npy`` file. spec: the features the centroids were fitted on (its `dim`
            must equal D). spherical: assign by cosine (L2-normalised frames and centroids).
    Raises:
        InputError: unreadable file, pickled object array, wrong shape, non-finite values.
        ConfigError: `spec.dim` differs from D, or K outside [2, 65535].
    """
    p = Path(path)
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:  # ValueError: an object array would need a pickle
        raise InputError(str(p), f"cannot read centroids without a pickle ({exc}); save them with "
                         "np.save(path, centers.astype('float32'))") from exc
    if arr.ndim != 2:
        raise InputError(str(p), f"centroids must be a 2-D (K, D) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(str(p), f"centroids must be floating point, got {arr.dtype}")
    k, d = (int(n) for n in arr.shape)
    if not np.isfinite(arr).all():
        raise InputError(str(p), "centroids hold NaN or inf")
    if not 2 <= k <= MAX_UNITS:
        raise ConfigError("k", k, f"(rows of {p}) must be in [2, {MAX_UNITS}] (units are uint16)")
    if spec.dim != d:
        raise ConfigError("features.dim", spec.dim, f"must equal the centroid dimension {d} of {p}")
    if spec.pca_dim is not None:
        raise ConfigError("features.pca_dim", spec.pca_dim,
                          "must be null for .npy centroids (no PCA matrix is imported)")
    centroids = np.ascontiguousarray(arr, dtype=np.float32)
    if spherical:
        centroids = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    cfg = KMeansConfig(k=k, iterations=1, frame_budget=k, spherical=spherical,
                       metric="ip" if spherical else "l2")
    return KMeansModel(centroids=centroids, config=cfg, dim=d, feature_spec=spec.to_dict())


def load_kmeans(path: str | Path, spec: FeatureSpec | None = None, *, spherical: bool = False) -> KMeansModel:
    """The k-means model at `path`: a `KMeansModel.save` directory (``kmeans.json``; e.g.
    ``OUT/models/NAME`` of another run) or a ``.npy`` file of centroids (needs `spec`).

    A directory's recorded spec is kept; `spec` may be given for a directory saved before
    specs were recorded, and must agree with a recorded one.
    """
    p = Path(path)
    if p.is_dir():
        model = KMeansModel.load(p)
        if spec is not None:
            if model.feature_spec is None:
                model.feature_spec = spec.to_dict()
            else:
                recorded = FeatureSpec.from_dict(model.feature_spec)
                diff = recorded.mismatch(spec)
                if diff is not None:
                    raise ConfigError(f"features.{diff[0]}", diff[2],
                                      f"must equal {diff[1]!r}, as recorded by the model {p}")
        return model
    if p.suffix == ".npy" and p.is_file():
        if spec is None:
            raise ConfigError("features", None, f"must be given for .npy centroids ({p}): feature_type, "
                              "dim, frame_rate, sample_rate, layer, normalize, model_checksum")
        return import_npy_centroids(p, spec, spherical=spherical)
    hint = ""
    if (p / "models").is_dir():  # a run's output directory: name its models
        found = sorted(str(m.parent) for m in (p / "models").glob("*/kmeans.json"))
        hint = f"; it is a run output: use one of its models {found}" if found else ""
    raise InputError(str(p), "is neither a k-means model directory (with kmeans.json) nor a .npy file "
                     f"of centroids{hint}")
