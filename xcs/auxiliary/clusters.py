"""Balanced label clusters for the auxiliary objective, built from the training data.

A label's centroid is the sum of its training points' features, randomly projected to a few
dimensions (so the [L, F] centroid matrix is never formed) and L2-normalised. The clusters are
the leaves of a balanced tree: each node's labels are split in two by balanced spherical 2-means
(sizes proportional to the clusters below each side), until `num_clusters` leaves of sizes
floor(L/K) or ceil(L/K). Labels without training points get a zero centroid and land wherever the
split puts them. The result is cached in the workdir, so a resumed run reuses it.
"""

from __future__ import annotations

import os

import numpy as np

from xcs.core.errors import UserError
from xcs.data.sparse import CSR
from xcs.data.split import Split

_ROWS_PER_BLOCK = 65536  # points projected at once (bounds the [nnz, p] temporary)


def _sum_rows_by(ids: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """out[i] += sum of values[j] with ids[j] == i (a sort and np.add.reduceat; np.add.at is slow)."""
    if len(ids) == 0:
        return
    order = np.argsort(ids, kind="stable")
    unique, starts = np.unique(ids[order], return_index=True)
    out[unique] += np.add.reduceat(values[order], starts, axis=0)


def _project_points(split: Split, projection: np.ndarray) -> np.ndarray:
    """Features of every point times the projection: [N, p], one block of rows at a time."""
    if split.dense is not None:
        return np.asarray(split.dense, np.float32) @ projection
    feats: CSR = split.features
    out = np.zeros((feats.num_rows, projection.shape[1]), np.float32)
    for lo in range(0, feats.num_rows, _ROWS_PER_BLOCK):
        hi = min(lo + _ROWS_PER_BLOCK, feats.num_rows)
        a, b = feats.indptr[lo], feats.indptr[hi]
        rows = np.repeat(np.arange(hi - lo), np.diff(feats.indptr[lo:hi + 1]))
        _sum_rows_by(rows, projection[feats.indices[a:b]] * feats.values[a:b, None], out[lo:hi])
    return out


def label_centroids(split: Split, num_labels: int, dim: int, seed: int) -> np.ndarray:
    """[L, dim] float32: L2-normalised random projections of each label's summed point features."""
    num_features = split.dense.shape[1] if split.dense is not None else split.features.num_cols
    rng = np.random.default_rng([seed, 11])
    projection = rng.normal(size=(num_features, dim)).astype(np.float32) / np.sqrt(dim)
    points = _project_points(split, projection)
    labels = split.labels
    point_of = np.repeat(np.arange(labels.num_rows), labels.row_lengths())
    centroids = np.zeros((num_labels, dim), np.float32)
    for lo in range(0, len(point_of), _ROWS_PER_BLOCK):
        sl = slice(lo, lo + _ROWS_PER_BLOCK)
        _sum_rows_by(labels.indices[sl], points[point_of[sl]], centroids)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.maximum(norms, 1e-12)


def _split_two(x: np.ndarray, n_left: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the n_left rows that go left, by balanced spherical 2-means."""
    n = len(x)
    order = np.arange(n)
    a, b = rng.choice(n, 2, replace=False)
    c_left, c_right = x[a], x[b]
    for _ in range(iterations):
        # Rank by preference for the left centroid; the n_left most left-leaning rows go left.
        order = np.argsort(-(x @ (c_left - c_right)), kind="stable")
        c_left = x[order[:n_left]].sum(0)
        c_right = x[order[n_left:]].sum(0)
        c_left /= max(np.linalg.norm(c_left), 1e-12)
        c_right /= max(np.linalg.norm(c_right), 1e-12)
    left = np.zeros(n, bool)
    left[order[:n_left]] = True
    return left


def balanced_clusters(centroids: np.ndarray, num_clusters: int, iterations: int, seed: int) -> np.ndarray:
    """[L] int32 cluster ids in [0, num_clusters), each cluster of floor(L/K) or ceil(L/K) labels."""
    num_labels = len(centroids)
    if not 1 <= num_clusters <= num_labels:
        raise UserError(f"config.aux.clusters={num_clusters}: must be between 1 and the number of labels "
                         f"{num_labels}")
    rng = np.random.default_rng([seed, 13])
    out = np.zeros(num_labels, np.int32)
    stack = [(np.arange(num_labels), num_clusters, 0)]  # (labels, clusters below this node, first cluster id)
    while stack:
        ids, k, first = stack.pop()
        if k == 1:
            out[ids] = first
            continue
        k_left = k // 2
        # Sizes proportional to the leaves below each side keep every leaf within one of L/K.
        n_left = _left_size(len(ids), k, k_left)
        left = _split_two(centroids[ids], n_left, iterations, rng)
        stack.append((ids[left], k_left, first))
        stack.append((ids[~left], k - k_left, first + k_left))
    return out


def _left_size(n: int, k: int, k_left: int) -> int:
    """Labels for the left k_left of k leaves when n = q k + r: the r larger leaves go left first."""
    q, r = divmod(n, k)
    return q * k_left + min(r, k_left)


def cached_label_clusters(split: Split, num_labels: int, num_clusters: int, projection: int, iterations: int,
                          seed: int, workdir: str | None) -> np.ndarray:
    """balanced_clusters of the label centroids of `split`, cached as workdir/label_clusters_*.npy."""
    path = None
    if workdir:
        path = os.path.join(workdir, f"label_clusters_L{num_labels}_K{num_clusters}_p{projection}_"
                                     f"i{iterations}_s{seed}.npy")
        if os.path.exists(path):
            cached = np.load(path)
            if cached.shape == (num_labels,):
                return cached
    clusters = balanced_clusters(label_centroids(split, num_labels, projection, seed), num_clusters, iterations,
                                 seed)
    if path:
        os.makedirs(workdir, exist_ok=True)
        tmp = path + ".tmp.npy"
        np.save(tmp, clusters)
        os.replace(tmp, path)
    return clusters
