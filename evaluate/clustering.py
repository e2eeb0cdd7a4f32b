"""Clustering of frozen features: k-means, NMI / ARI / Hungarian-matched accuracy, 2-D embeddings.

Pure functions of features (numpy arrays or torch tensors). k-means is scikit-learn's ``KMeans``
(Lloyd, k-means++ seeding, ``n_init`` restarts, seeded); faiss's k-means only on request and only
where faiss is importable. Metrics: normalised mutual information (arithmetic normalisation) and
adjusted Rand index (Hubert & Arabie, 1985) from ``sklearn.metrics``, in [0, 1] / [-0.5, 1], and the
clustering accuracy of the best one-to-one matching of clusters to classes (Kuhn's Hungarian
method on the contingency table, as in e.g. Xie et al., "Unsupervised Deep Embedding for
Clustering Analysis", ICML 2016), in percent like the probes' top1.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

ArrayLike = np.ndarray | torch.Tensor
EMBEDDINGS = ("tsne", "umap")


def _numpy(a: ArrayLike) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _features(x: ArrayLike, name: str = "features") -> np.ndarray:
    a = _numpy(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"clustering: {name} must be a non-empty (N, D) array, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"clustering: {name} contains NaN or infinite values")
    return a


def _labels(y: ArrayLike, n: int, name: str) -> np.ndarray:
    a = _numpy(y)
    if a.ndim != 1 or len(a) != n or n == 0:
        raise ValueError(f"clustering: {name} must be a non-empty 1-D array of {n} labels, got shape {a.shape}")
    return a


def contingency(pred: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """(P, L) counts of rows with cluster p (P distinct clusters) and class l (L distinct classes)."""
    pred = _labels(pred, len(pred), "pred")
    labels = _labels(labels, len(pred), "labels")
    _, p = np.unique(pred, return_inverse=True)
    _, q = np.unique(labels, return_inverse=True)
    table = np.zeros((p.max() + 1, q.max() + 1), dtype=np.int64)
    np.add.at(table, (p, q), 1)
    return table


def hungarian_accuracy(pred: ArrayLike, labels: ArrayLike) -> float:
    """Percent of rows correct under the best one-to-one map of clusters to classes.

    pred, labels: (N,) of any values; the numbers of clusters and classes may differ (the extra
    clusters, or classes, are left unmatched and their rows count as errors).
    """
    table = contingency(pred, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return 100.0 * table[rows, cols].sum() / table.sum()


def kmeans(features: ArrayLike, n_clusters: int, seed: int = 0, n_init: int = 10, max_iter: int = 300,
           backend: str = "sklearn") -> np.ndarray:
    """(N,) cluster index of every row of features (N, D).

    backend "sklearn": ``KMeans(n_init, random_state=seed)``; "faiss": ``faiss.Kmeans`` (``nredo=n_init``;
    note that faiss trains on at most 256 points per centroid by default), only if faiss is importable.
    """
    x = _features(features)
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"kmeans: n_clusters must be in [1, {len(x)}] (the number of rows), got {n_clusters}")
    if backend == "sklearn":
        km = KMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed)
        return km.fit_predict(x)
    if backend == "faiss":
        try:
            import faiss
        except ImportError as e:
            raise ImportError("kmeans(backend='faiss') needs the faiss package (faiss-cpu or faiss-gpu), "
                              "which is not installed; use backend='sklearn'") from e
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        km = faiss.Kmeans(x32.shape[1], n_clusters, niter=max_iter, nredo=n_init, seed=seed, verbose=False)
        km.train(x32)
        return km.index.search(x32, 1)[1][:, 0].astype(np.int64)
    raise ValueError(f"kmeans: unknown backend {backend!r}; valid: 'sklearn', 'faiss'")


def cluster_metrics(features: ArrayLike, labels: ArrayLike, n_clusters: int | None = None, seed: int = 0,
                    n_init: int = 10, l2_normalize: bool = False, backend: str = "sklearn") -> dict[str, float]:
    """k-means on features (N, D) scored against labels (N,): {"nmi", "ari", "acc" (percent)}.

    n_clusters defaults to the number of distinct labels; l2_normalize clusters directions
    (spherical features) instead of raw vectors.
    """
    x = _features(features)
    y = _labels(labels, len(x), "labels")
    if l2_normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = len(np.unique(y)) if n_clusters is None else n_clusters
    pred = kmeans(x, k, seed=seed, n_init=n_init, backend=backend)
    return {"nmi": float(normalized_mutual_info_score(y, pred)), "ari": float(adjusted_rand_score(y, pred)),
            "acc": float(hungarian_accuracy(pred, y))}


def embed_2d(features: ArrayLike, method: str = "tsne", seed: int = 0, max_points: int = 10_000,
             pca_dims: int | None = 50, perplexity: float = 30.0, n_threads: int | None = None) -> np.ndarray:
    """(N, 2) t-SNE or UMAP embedding of features (N, D), deterministic for a seed on a given machine.

    When N > max_points only a seeded random subset of max_points rows is embedded and the other
    rows are NaN (so the output stays aligned with the labels; matplotlib skips NaN points).
    pca_dims: first project to this many principal components when D is larger (the usual t-SNE
    practice; None: never). t-SNE: scikit-learn's (Barnes-Hut, PCA initialisation, perplexity
    capped at (n - 1) / 3 for tiny n); UMAP needs the umap-learn package. n_threads: OpenMP / BLAS
    threads for the fit (None: the libraries' default; 1 avoids OpenMP's spin-waiting on a busy machine).
    """
    if method not in EMBEDDINGS:
        raise ValueError(f"embed_2d: unknown method {method!r}; valid: {', '.join(EMBEDDINGS)}")
    if method == "umap":
        try:
            import umap
        except ImportError as e:
            raise ImportError("embed_2d(method='umap') needs the umap-learn package, which is not installed "
                              "(pip install umap-learn); method='tsne' works without it") from e
    x = _features(features)
    if len(x) < 4:
        raise ValueError(f"embed_2d: needs at least 4 rows, got {len(x)}")
    rows = np.arange(len(x))
    if len(x) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    sub = x[rows].astype(np.float32)
    if pca_dims is not None and sub.shape[1] > pca_dims and len(sub) > pca_dims:
        from sklearn.decomposition import PCA
        sub = PCA(pca_dims, random_state=seed).fit_transform(sub)
    with threadpool_limits(n_threads):
        if method == "tsne":
            from sklearn.manifold import TSNE
            emb = TSNE(2, perplexity=min(perplexity, (len(sub) - 1) / 3), init="pca", learning_rate="auto",
                       random_state=seed).fit_transform(sub)
        else:
            emb = umap.UMAP(n_components=2, random_state=seed).fit_transform(sub)
    out = np.full((len(x), 2), np.nan)
    out[rows] = emb
    return out
