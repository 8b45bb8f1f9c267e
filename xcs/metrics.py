"""Ranking metrics of extreme classification, from streamed top-k predictions.

P@k, nDCG@k, PSP@k (Jain et al. 2016 propensities) and recall@k, with the same definitions as
napkinXC and pyxclib: means over all points (a point without labels counts, scoring 0), and PSP@k
normalised by the best achievable PSP@k (ratio of sums over the data set). Predictions arrive in
chunks of [n, k] label ids; no [N, L] score matrix is ever formed. Results are in percent.
"""

from __future__ import annotations

import numpy as np

from xcs.data.sparse import CSR


def inverse_propensity(train_labels: CSR, a: float, b: float) -> np.ndarray:
    """Jain et al. inverse propensities q_l = 1 + C (N_l + B)^-A, C = (ln N - 1)(B + 1)^A."""
    n = train_labels.num_rows
    counts = train_labels.column_counts().astype(np.float64)
    c = (np.log(n) - 1.0) * (b + 1.0) ** a
    return 1.0 + c * (counts + b) ** (-a)


def _hits(pred: np.ndarray, true: CSR) -> np.ndarray:
    """hits[i, j] = pred[i, j] is a label of point i, by sorted (row, label) keys."""
    n, k = pred.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), true.row_lengths())
    width = np.int64(max(true.num_cols, int(pred.max(initial=0)) + 1))
    keys = np.sort(rows * width + true.indices)
    query = np.arange(n, dtype=np.int64)[:, None] * width + pred.astype(np.int64)
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = keys[pos] == query if len(keys) else np.zeros_like(query, dtype=bool)
    return found & (pred >= 0)


def _best_inverse_propensities(true: CSR, inv_ps: np.ndarray, k: int) -> np.ndarray:
    """[n, k]: each point's true labels' inverse propensities, largest first, zero-padded."""
    n = true.num_rows
    lengths = true.row_lengths()
    rows = np.repeat(np.arange(n), lengths)
    weights = inv_ps[true.indices]
    order = np.lexsort((-weights, rows))
    rank = np.arange(len(order)) - np.repeat(true.indptr[:-1], lengths)
    out = np.zeros((n, k))
    keep = rank < k
    out[rows[keep], rank[keep]] = weights[order][keep]
    return out


class RankingMetrics:
    """Accumulates metrics at 1..k over chunks of predictions; `result()` gives percentages."""

    def __init__(self, k: int, inv_ps: np.ndarray):
        self.k, self.inv_ps = k, inv_ps
        self.count = 0
        self.precision = np.zeros(k)
        self.recall = np.zeros(k)
        self.ndcg = np.zeros(k)
        self.psp = np.zeros(k)
        self.psp_best = np.zeros(k)
        self.discount = 1.0 / np.log2(np.arange(k) + 2.0)

    def update(self, pred: np.ndarray, true: CSR) -> None:
        """pred [n, >=k] label ids ranked best first (-1 = no prediction); true: the n points' labels."""
        pred = np.asarray(pred)[:, : self.k]
        if pred.shape[1] < self.k:  # fewer predictions than k: the missing ones never hit
            pred = np.pad(pred, ((0, 0), (0, self.k - pred.shape[1])), constant_values=-1)
        hits = _hits(pred, true).astype(np.float64)
        num_true = true.row_lengths()
        at = np.arange(1, self.k + 1)
        cum_hits = np.cumsum(hits, axis=1)
        self.precision += (cum_hits / at).sum(0)
        has = num_true > 0
        self.recall += (cum_hits[has] / num_true[has, None]).sum(0)
        dcg = np.cumsum(hits * self.discount, axis=1)
        # The ideal DCG at position i counts min(i, |y|) hits, as napkinXC does.
        ideal_at = np.cumsum(self.discount[None, :] * (np.arange(self.k)[None, :] < num_true[:, None]), axis=1)
        self.ndcg += (dcg[has] / ideal_at[has]).sum(0)
        weights = np.where(pred >= 0, self.inv_ps[np.maximum(pred, 0)], 0.0)
        self.psp += (np.cumsum(hits * weights, axis=1) / at).sum(0)
        self.psp_best += (np.cumsum(_best_inverse_propensities(true, self.inv_ps, self.k), axis=1) / at).sum(0)
        self.count += len(pred)

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        n = max(self.count, 1)
        for name, values in (("P", self.precision / n), ("nDCG", self.ndcg / n),
                             ("PSP", self.psp / np.maximum(self.psp_best, 1e-300)), ("R", self.recall / n)):
            for i, v in enumerate(values):
                out[f"{name}@{i + 1}"] = float(100.0 * v)
        return out


def evaluate_predictions(pred: np.ndarray, true: CSR, inv_ps: np.ndarray, k: int,
                         chunk: int = 65536) -> dict[str, float]:
    """Metrics at 1..k of a whole [N, >=k] prediction array, accumulated in chunks of points."""
    metrics = RankingMetrics(k, inv_ps)
    for start in range(0, len(pred), chunk):
        rows = np.arange(start, min(start + chunk, len(pred)))
        metrics.update(pred[rows], true.take(rows))
    return metrics.result()
