"""Prediction over a split in fixed-size batches, streamed into the metrics and predictions.txt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from xcs.data.batching import Batcher, eval_batches
from xcs.metrics import RankingMetrics


def evaluate(predict: Callable[[Any, dict], tuple[jax.Array, jax.Array]], variables: Any, batcher: Batcher,
             batch_size: int, metrics_k: int, inv_ps: np.ndarray,
             predictions_path: str | None = None) -> dict[str, float]:
    """Metrics at 1..metrics_k of the top-k predictions of every point of `batcher`'s split.

    With `predictions_path`, writes the top-k per point in the XC sparse format: a header
    `num_points num_labels`, then one line `label:score ...` per point (best first).
    """
    split = batcher.split
    metrics = RankingMetrics(metrics_k, inv_ps)
    out = open(predictions_path, "w") if predictions_path else None
    try:
        if out:
            out.write(f"{split.num_points} {split.labels.num_cols}\n")
        start = 0
        pending = None
        # One batch in flight while the previous one is scored on the host.
        for batch, valid in eval_batches(batcher, batch_size):
            result = (predict(variables, batch), start, valid)
            if pending is not None:
                _consume(pending, split, metrics, out)
            pending = result
            start += valid
        if pending is not None:
            _consume(pending, split, metrics, out)
    finally:
        if out:
            out.close()
    return metrics.result()


def _consume(pending, split, metrics: RankingMetrics, out) -> None:
    (scores, ids), start, valid = pending
    scores, ids = np.asarray(scores)[:valid], np.asarray(ids)[:valid]
    rows = np.arange(start, start + valid)
    metrics.update(ids, split.labels.take(rows))
    if out:
        for s_row, i_row in zip(scores, ids):
            out.write(" ".join(f"{i}:{s:.6g}" for i, s in zip(i_row, s_row) if i >= 0) + "\n")
