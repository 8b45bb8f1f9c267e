"""Candidate recall of the LSH head at prediction time, over a whole evaluation split.

For each point, the candidate block that prediction re-scores (xcs.lsh.head.predict_candidates,
with the same fixed key as `topk`) is compared with
  candidate_recall_true    its true labels: the share of them that the block holds,
  candidate_recall_true_trained  the same over the true labels that were a true label in training
                           (a label never trained cannot be ranked by its weights, by any method),
  candidate_recall@k       the exact top-k labels (every label scored, as full softmax predicts):
                           the share of them that the block holds.
Both are means over the points (points without labels count for the second only). The test
metrics of the lsh head's declaration (xcs.lsh.method), so they land in results.json beside P@k.
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
from xcs.lsh.layer import LSHHead, head_state


def candidate_recall_metrics(config: ml_collections.ConfigDict, model: Any, variables: dict, batcher: Batcher,
                             ) -> dict[str, float]:
    """{'candidate_recall_true': ..., 'candidate_recall@k': ...} over `batcher`'s split (k = config.eval.top_k)."""
    head: LSHHead = model.head
    cfg, k = head.cfg, config.eval.top_k
    if cfg.spec is None or cfg.predict != "candidates":  # every label is scored: recall 1 by construction
        return {"candidate_recall_true": 1.0, "candidate_recall_true_trained": 1.0, f"candidate_recall@{k}": 1.0}
    exact_cfg = dataclasses.replace(cfg, predict="exact")

    @jax.jit
    def recalls(variables, batch):
        h = model.apply(variables, batch, False)
        state = head_state({c: v for c, v in variables.items() if c != "params"})
        h_aug = lsh.augment(h, head.use_bias)
        cand, valid = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(0))  # as topk draws them
        true = lsh.candidate_recall(cand, valid, batch["label_idx"], batch["label_mask"])
        trained_mask = batch["label_mask"] & state.trained[batch["label_idx"]]
        trained = lsh.candidate_recall(cand, valid, batch["label_idx"], trained_mask)
        _, exact = lsh.topk(exact_cfg, state, h, k, head.use_bias, jax.random.PRNGKey(0))
        top = lsh.candidate_recall(cand, valid, jnp.maximum(exact, 0), exact >= 0)
        return true, batch["label_mask"].any(-1), trained, trained_mask.any(-1), top

    sums, points, labelled, labelled_trained = np.zeros(3), 0, 0, 0
    for batch, valid in eval_batches(batcher, config.eval.batch_size):
        true, has, trained, has_trained, top = (a[:valid] for a in jax.device_get(recalls(variables, batch)))
        sums += [true[has].sum(), trained[has_trained].sum(), top.sum()]
        labelled += int(has.sum())
        labelled_trained += int(has_trained.sum())
        points += valid
    return {"candidate_recall_true": float(sums[0] / max(labelled, 1)),
            "candidate_recall_true_trained": float(sums[1] / max(labelled_trained, 1)),
            f"candidate_recall@{k}": float(sums[2] / max(points, 1))}
