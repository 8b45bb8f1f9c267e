"""Candidate recall of the LSH head at prediction time, over a whole evaluation split.

For each point, the candidate block that prediction re-scores (xcs.lsh.head.predict_candidates,
with the same fixed key as `topk`) is compared with
  candidate_recall_true    its true labels: the share of them that the block holds, and
  candidate_recall@k       the exact top-k labels (every label scored, as full softmax predicts):
                           the share of them that the block holds.
Both are means over the points (points without labels count for the second only). Registered in
xcs.train.evaluate.HEAD_METRICS["lsh"], so they land in results.json beside P@k.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from xcs.data.batching import Batcher, eval_batches
from xcs.lsh import head as lsh
from xcs.models.lsh_head import LSHHead, head_state


def candidate_recall_metrics(config: ml_collections.ConfigDict, model: Any, variables: dict, batcher: Batcher,
                             ) -> dict[str, float]:
    """{'candidate_recall_true': ..., 'candidate_recall@k': ...} over `batcher`'s split (k = config.eval.top_k)."""
    head: LSHHead = model.head
    cfg, k = head.cfg, config.eval.top_k
    if cfg.spec is None or cfg.predict != "candidates":  # every label is scored: recall 1 by construction
        return {"candidate_recall_true": 1.0, f"candidate_recall@{k}": 1.0}
    exact_cfg = dataclasses.replace(cfg, predict="exact")

    @jax.jit
    def recalls(variables, batch):
        h = model.apply(variables, batch, False)
        state = head_state({c: v for c, v in variables.items() if c != "params"})
        h_aug = lsh.augment(h, head.use_bias)
        cand, valid = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(0))  # as topk draws them
        true = lsh.candidate_recall(cand, valid, batch["label_idx"], batch["label_mask"])
        _, exact = lsh.topk(exact_cfg, state, h, k, head.use_bias, jax.random.PRNGKey(0))
        top = lsh.candidate_recall(cand, valid, jnp.maximum(exact, 0), exact >= 0)
        return true, batch["label_mask"].any(-1), top

    sums, points, labelled = np.zeros(2), 0, 0
    for batch, valid in eval_batches(batcher, config.eval.batch_size):
        true, has, top = jax.device_get(recalls(variables, batch))
        sums += [true[:valid][has[:valid]].sum(), top[:valid].sum()]
        labelled += int(has[:valid].sum())
        points += valid
    return {"candidate_recall_true": float(sums[0] / max(labelled, 1)),
            f"candidate_recall@{k}": float(sums[1] / max(points, 1))}
