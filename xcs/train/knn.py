"""Prediction with a kNN memory: the head's probabilities mixed with the labels of the nearest training points.

    score(l | x) = (1 - λ) · p_l(x) + λ · Σ_{j ∈ N_K(x)} w_j · y_jl / |y_j|

p_l is the head's softmax(head(h(x)))_l, or, for a head trained one-versus-all (loss ova), its sigmoid
σ(head(h(x))_l - log L) at the loss's offset. Votes split over a neighbour's labels are the softmax's target;
for ova the neighbours' whole votes (Σ w_j · y_jl, an estimate of P(y_l = 1) as the sigmoid is) were measured
too and not kept: on the panel's ova shapes they gained a little more on the real ones and lost much more on the
synthetic one (docs/methods/knn.md).

N_K(x) are the K training points whose embeddings h (the encoder's output, L2-normalised) have the
largest cosine similarity with h(x), and w = softmax(similarity / T) over them (the interpolation of
kNN-LM, Khandelwal et al. 2020, with the neighbour label vote of XMC kNN baselines). A label seen a
few times in training is weak in the head but is found again through its own training points, which
is why the mix raises the propensity-scored metrics most. Switched on by config.eval.knn.neighbors > 0.

The memory (all training points' embeddings, [N, d] float32, and their padded labels) is rebuilt from
the current parameters at each evaluation; neighbours are searched in chunks of the memory
(xcs.nn.topk.chunked_topk), so no [B, N] similarity matrix is held. The top-k is exact: a label
that is neither in the head's top-k nor among the neighbours' labels scores (1 - λ)·p_l, which is no
more than each of the head's top-k labels scores, so ranking that union suffices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from xcs.data.batching import Batcher, eval_batches, pad_rows
from xcs.losses import ova_offset
from xcs.nn.model import XMCModel
from xcs.nn.topk import chunked_topk


@flax.struct.dataclass
class Memory:
    embeddings: jax.Array  # [N, d] float32, rows of unit norm
    label_idx: jax.Array  # [N, Y] int32 labels of each training point, padded
    label_mask: jax.Array  # [N, Y] bool


def unit_rows(h: jax.Array) -> jax.Array:
    """Each row of `h` scaled to unit L2 norm (the memory's and the queries' form)."""
    return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)


def build_memory(model: XMCModel, variables: Any, batcher: Batcher, batch_size: int) -> Memory:
    """The normalised embeddings and the labels of every point of `batcher`'s split (the training split)."""
    embed = jax.jit(lambda v, b: unit_rows(model.apply(v, b, False)))
    parts = [embed(variables, batch)[:valid] for batch, valid in eval_batches(batcher, batch_size)]
    labels = batcher.split.labels
    idx, _, mask = pad_rows(labels, np.arange(labels.num_rows), batcher.label_width)
    return Memory(jnp.concatenate(parts), jnp.asarray(idx, jnp.int32), jnp.asarray(mask, bool))


def neighbours(query: jax.Array, memory: jax.Array, k: int, chunk: int) -> tuple[jax.Array, jax.Array]:
    """Cosine similarities [B, k] and row ids [B, k] (−1 past N) of each unit query's k nearest memory rows."""

    def score_chunk(start, size):
        return query @ jax.lax.dynamic_slice_in_dim(memory, start, size, axis=0).T

    return chunked_topk(score_chunk, query.shape[0], memory.shape[0], chunk, k)


def neighbour_votes(similarity: jax.Array, rows: jax.Array, memory: Memory, temperature: float,
                    split: bool = True) -> tuple[jax.Array, jax.Array]:
    """Label ids [B, K·Y] (−1 = none) and their votes: softmax(similarity / T)_j per label of row j, divided by
    |y_j| when `split` (prediction's) or whole (the comparison's).

    A label that several neighbours share appears once per neighbour; fused_topk sums them.
    """
    found = rows >= 0
    weights = jax.nn.softmax(jnp.where(found, similarity / temperature, -jnp.inf), axis=1)
    rows = jnp.maximum(rows, 0)
    mask = memory.label_mask[rows] & found[..., None]  # [B, K, Y]
    count = jnp.maximum(mask.sum(-1, keepdims=True), 1) if split else 1
    votes = jnp.where(mask, weights[..., None] / count, 0.0)
    ids = jnp.where(mask, memory.label_idx[rows], -1)
    batch = rows.shape[0]
    return ids.reshape(batch, -1), votes.reshape(batch, -1)


def fused_topk(head_ids: jax.Array, head_score: jax.Array, vote_ids: jax.Array, vote_score: jax.Array,
               votes: jax.Array, vote_weight: float | jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Top-k (scores, ids) of score(l) + vote_weight·(summed votes of l) over head_ids ∪ vote_ids.

    score(l) is a label's score without its votes, given for each entry: head_score [B, k] of head_ids, which
    must be the top-k of that score over all labels, and vote_score [B, M] of vote_ids (the same value wherever
    a label repeats), so that, votes being >= 0, the union holds the top-k. Ids −1 are empty slots; with fewer
    than k candidates the tail is −1.
    """
    ids = jnp.concatenate([head_ids, vote_ids], axis=1)
    v = jnp.concatenate([jnp.zeros(head_ids.shape, votes.dtype), votes], axis=1)
    base = jnp.concatenate([head_score, vote_score], axis=1)
    order = jnp.argsort(ids, axis=1)
    ids, v, base = (jnp.take_along_axis(a, order, axis=1) for a in (ids, v, base))
    # Equal ids are now adjacent: each run's total vote is read at its last entry, from the running
    # sum minus the running sum at the previous run's end (votes are >= 0, so that is a running max).
    last = jnp.concatenate([ids[:, :-1] != ids[:, 1:], jnp.ones((ids.shape[0], 1), bool)], axis=1)
    running = jnp.cumsum(v, axis=1)
    ends = jax.lax.cummax(jnp.where(last, running, 0.0), axis=1)
    before = jnp.concatenate([jnp.zeros((ids.shape[0], 1), v.dtype), ends[:, :-1]], axis=1)
    vote = running - before
    score = jnp.where(last & (ids >= 0), base + vote_weight * vote, -jnp.inf)
    top, pos = jax.lax.top_k(score, min(k, score.shape[1]))
    top_ids = jnp.where(jnp.isfinite(top), jnp.take_along_axis(ids, pos, axis=1), -1)
    if top.shape[1] < k:
        top = jnp.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-jnp.inf)
        top_ids = jnp.pad(top_ids, ((0, 0), (0, k - top_ids.shape[1])), constant_values=-1)
    return top, top_ids


def probability(logits: jax.Array, log_partition: jax.Array | None, ova_labels: int | None) -> jax.Array:
    """The head's probabilities of labels from their logits [B, M]: the softmax's (log_partition [B]) or, for a
    head trained one-versus-all over `ova_labels` labels, the sigmoids at the loss's offset."""
    if ova_labels is None:
        return jnp.exp(logits - log_partition[:, None])
    return jax.nn.sigmoid(logits - ova_offset(ova_labels))


def ova_labels(loss_name: str, num_labels: int) -> int | None:
    """make_knn_predict's `ova_labels` for a run trained with `loss_name` (resolved: not auto)."""
    return num_labels if loss_name == "ova" else None


def make_knn_predict(model: XMCModel, k: int, knn: ml_collections.ConfigDict, memory: Memory,
                     ova_labels: int | None = None, split_votes: bool = True,
                     ) -> Callable[[Any, dict], tuple[jax.Array, jax.Array]]:
    """`(variables, batch) -> (scores [B, k], ids [B, k])` of the kNN-mixed prediction, like make_predict's.

    The head's softmax, or, for a head trained one-versus-all over `ova_labels` labels, its sigmoids (at the
    loss's offset), mixed with the neighbours' votes: split over each neighbour's labels, or whole with
    `split_votes=False` (module docstring; experiments.knn_weights --votes compares them).
    """

    def head_topk(module, h):
        if ova_labels is None:
            return module.head.topk_log_partition(h, k)
        return (*module.head.topk(h, k), None)  # sigmoids need no log-partition over all labels

    def head_logits(module, h, ids):
        return module.head.label_logits(h, ids)

    @jax.jit
    def predict(variables, batch, memory):
        h = model.apply(variables, batch, False)
        similarity, rows = neighbours(unit_rows(h), memory.embeddings, knn.neighbors, knn.memory_chunk)
        vote_ids, votes = neighbour_votes(similarity, rows, memory, knn.temperature, split=split_votes)
        head_logits_k, head_ids, log_partition = model.apply(variables, h, method=head_topk)
        vote_logits = model.apply(variables, h, jnp.maximum(vote_ids, 0), method=head_logits)
        mix = 1.0 - knn.weight
        return fused_topk(head_ids, mix * probability(head_logits_k, log_partition, ova_labels), vote_ids,
                          mix * probability(vote_logits, log_partition, ova_labels), votes, knn.weight, k)

    return lambda variables, batch: predict(variables, batch, memory)
