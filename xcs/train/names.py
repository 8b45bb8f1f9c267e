"""Prediction with the labels' names: the match of a point's features with each label's name mixed in.

    score(l | x) = (1 - μ) · prediction(l | x) + μ · cos(x, n_l)

`prediction` is what the run predicts without names (the head's probabilities, mixed with the kNN votes when
config.eval.knn is on, xcs.train.knn). n_l is label l's name as a vector over the input features: the idf of
its name's tokens (xcs.data.tfidf.tokenize) that are features of the data's vocabulary (vocab.txt beside XC
files, or the vectorizer fitted on texts), L2-normalised; x is the point's feature row, L2-normalised. The match
needs no training and exists for a label that no training point has, which is where it helps: a hypernym's
lemma in the gloss, a header's path in the C file. Where names say nothing (the generic ancestors of a full
hierarchy) it hurts, so μ is chosen per data set (config.eval.names.weights): the run holds out
config.eval.names.tune_fraction of the training points, trains on the rest, and picks the weight with the best
P@1 on them (the kNN memory then takes every training point, as xcs.predict rebuilds it).

The top-k is exact: a first pass over label chunks gives the softmax's log-partition, a second the top-k of
(1 - μ)(1 - λ)·p_l + μ·cos(x, n_l) over every label (head.chunk_logits); the kNN votes are non-negative, so the
top-k of the full score lies in that top-k joined with the voted labels (xcs.train.knn.fused_topk). A batch
holds its points' feature rows densely ([B, features]) to read the names' tokens from; no [B, labels] array is
ever whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from xcs.data.batching import Batcher, eval_batches
from xcs.data.sparse import CSR
from xcs.data.split import Dataset
from xcs.data.tfidf import tokenize
from xcs.metrics import RankingMetrics
from xcs.nn.model import XMCModel
from xcs.nn.topk import chunked_topk
from xcs.train import knn
from xcs.validate import name_weights

INDEX_FILE = "label_names_match.npz"  # the index and the chosen weight, kept in the workdir for xcs.predict
TUNE_STREAM = 11  # xcs.data.dataset.validation_rows' stream for the tuning points (the validation split's is 7)


@flax.struct.dataclass
class NameIndex:
    tokens: jax.Array  # [L, T] int32: the feature ids of each label's name tokens (0 where padded)
    weights: jax.Array  # [L, T] float32: their unit-norm idf weights (0 where padded or the name has no feature)


def build_index(names: Sequence[str], vocabulary: Sequence[str], train_features: CSR,
                num_features: int) -> NameIndex:
    """Each label's name tokens that are features, weighted by their idf on `train_features`, rows unit-norm."""
    index = {token: i for i, token in enumerate(vocabulary[:num_features])}
    counts = np.zeros(num_features, np.int64)
    counts[: train_features.num_cols] = train_features.column_counts()[:num_features]
    idf = np.log((1.0 + train_features.num_rows) / (1.0 + counts)) + 1.0
    rows = [sorted({index[t] for t in tokenize(name) if t in index}) for name in names]
    width = max(1, max(map(len, rows), default=1))
    tokens = np.zeros((len(names), width), np.int32)
    weights = np.zeros((len(names), width), np.float32)
    for label, ids in enumerate(rows):
        if ids:
            w = idf[ids]
            tokens[label, : len(ids)] = ids
            weights[label, : len(ids)] = w / np.linalg.norm(w)
    return NameIndex(tokens, weights)


def save_index(directory: str, index: NameIndex, weight: float) -> None:
    """The index and the weight chosen for it, for xcs.predict (written whole, then renamed)."""
    path = os.path.join(directory, INDEX_FILE)
    with open(path + ".tmp", "wb") as f:
        np.savez(f, tokens=np.asarray(index.tokens), weights=np.asarray(index.weights), weight=np.float64(weight))
    os.replace(path + ".tmp", path)


def load_index(directory: str) -> tuple[NameIndex, float] | None:
    """(index, weight) saved by save_index in `directory`, or None where there is none."""
    path = os.path.join(directory, INDEX_FILE)
    if not os.path.isfile(path):
        return None
    with np.load(path) as f:
        return NameIndex(f["tokens"], f["weights"]), float(f["weight"])


def point_rows(batch: dict[str, jax.Array], num_features: int) -> jax.Array:
    """The batch's feature rows as dense unit vectors [B, features]."""
    idx, val = batch["feat_idx"], batch["feat_val"]
    rows = jnp.zeros((idx.shape[0], num_features), jnp.float32)
    rows = rows.at[jnp.arange(idx.shape[0])[:, None], idx].add(val.astype(jnp.float32))
    return knn.unit_rows(rows)


def name_match(points: jax.Array, index: NameIndex, ids: jax.Array) -> jax.Array:
    """cos(x_b, n_l) [B, M] of the labels ids [B, M] (−1 is read as label 0; callers mask it)."""
    ids = jnp.maximum(ids, 0)
    tokens, weights = index.tokens[ids], index.weights[ids]  # [B, M, T]
    values = jnp.take_along_axis(points, tokens.reshape(ids.shape[0], -1), axis=1).reshape(tokens.shape)
    return (values * weights).sum(-1)


def chunk_match(points: jax.Array, index: NameIndex, start: jax.Array, size: int) -> jax.Array:
    """cos(x_b, n_l) [B, size] of the labels start..start+size-1."""
    tokens = jax.lax.dynamic_slice_in_dim(index.tokens, start, size, axis=0)  # [size, T]
    weights = jax.lax.dynamic_slice_in_dim(index.weights, start, size, axis=0)
    values = points[:, tokens.reshape(-1)].reshape(points.shape[0], *tokens.shape)
    return (values * weights[None]).sum(-1)


def make_names_predict(model: XMCModel, k: int, num_features: int, label_chunk: int, index: NameIndex,
                       knn_config: ml_collections.ConfigDict | None = None, memory: knn.Memory | None = None,
                       ova_labels: int | None = None) -> Callable[[Any, dict, Any], tuple[jax.Array, jax.Array]]:
    """`(variables, batch, μ) -> (scores, ids)` of the name-mixed prediction (module docstring): [B, k] each for
    one weight μ, [W, B, k] for a sequence of W weights, all scored from one pass over the labels.

    With `knn_config` and `memory`, the prediction mixed with the names is the kNN mix's; `ova_labels` as in
    xcs.train.knn.make_knn_predict. μ is an argument, so choosing it compiles once per number of weights.
    Labels are scored `label_chunk` / (the longest name's tokens) / W at a time: a chunk reads [B, chunk,
    tokens] of the points' rows and ranks [W·B, chunk] scores.
    """
    num_labels, name_width = index.tokens.shape
    index = jax.tree.map(jnp.asarray, index)  # an argument of the jitted function, not constants compiled in
    vote = 0.0 if knn_config is None else knn_config.weight

    def chunk_logits(module, h, start, size):
        return module.head.chunk_logits(h, start, size)

    def log_partition(module, h):
        return module.head.topk_log_partition(h, 1)[2]

    @jax.jit
    def predict(variables, batch, memory, index, weights):
        h = model.apply(variables, batch, False)
        points = point_rows(batch, num_features)
        log_z = None if ova_labels is not None else model.apply(variables, h, method=log_partition)
        batch_size, num_weights = h.shape[0], weights.shape[0]

        def mixed(logits, match):  # [B, M] -> [W·B, M]: row w·B + b is point b at weight w
            w = weights[:, None, None]
            p = knn.probability(logits, log_z, ova_labels)
            return ((1 - w) * (1 - vote) * p[None] + w * match[None]).reshape(num_weights * batch_size, -1)

        def base_chunk(start, size):
            logits = model.apply(variables, h, start, size, method=lambda m, h, s, n=size: chunk_logits(m, h, s, n))
            return mixed(logits, chunk_match(points, index, start, size))

        chunk = max(128, label_chunk // (name_width * num_weights))
        scores, ids = chunked_topk(base_chunk, num_weights * batch_size, num_labels, chunk, k)
        if memory is not None:
            similarity, rows = knn.neighbours(knn.unit_rows(h), memory.embeddings, knn_config.neighbors,
                                              knn_config.memory_chunk)
            vote_ids, votes = knn.neighbour_votes(similarity, rows, memory, knn_config.temperature)
            safe = jnp.maximum(vote_ids, 0)
            logits = model.apply(variables, h, safe, method=lambda m, h, i: m.head.label_logits(h, i))
            vote_score = mixed(logits, name_match(points, index, safe))  # each label's logits once, not W times
            tile = lambda a: jnp.tile(a, (num_weights, 1))  # noqa: E731
            vote_weight = (1 - jnp.repeat(weights, batch_size)[:, None]) * vote
            scores, ids = knn.fused_topk(ids, scores, tile(vote_ids), vote_score, tile(votes), vote_weight, k)
        return scores.reshape(num_weights, batch_size, k), ids.reshape(num_weights, batch_size, k)

    def run(variables, batch, weight):
        several = np.ndim(weight) > 0
        scores, ids = predict(variables, batch, memory, index, jnp.atleast_1d(jnp.asarray(weight, jnp.float32)))
        return (scores, ids) if several else (scores[0], ids[0])

    return run


def plan(config: ml_collections.ConfigDict, data: Dataset) -> tuple[NameIndex, tuple[float, ...]] | None:
    """The names' index (over `data`'s training split) and the weights μ to choose from (one: fixed), or None where
    the mix is off: every weight 0, or the data has no label names, vocabulary or sparse features to match them
    with, or no label's name has a token among the features (logged)."""
    weights = name_weights(config)
    if not any(weights):
        return None
    if data.label_names is None or data.vocabulary is None or data.train.features is None:
        logging.info("eval.names: off (the data has no %s)", "label names" if data.label_names is None else
                     "vocabulary (vocab.txt)" if data.vocabulary is None else "sparse features")
        return None
    index = build_index(data.label_names, data.vocabulary, data.train.features, data.num_features)
    named = int((np.asarray(index.weights)[:, 0] > 0).sum())
    if not named:
        logging.info("eval.names: off (no label's name has a token among the %d features)", data.num_features)
        return None
    logging.info("eval.names: %d of %d labels have name tokens among the features", named, data.num_labels)
    return index, weights


def choose_weight(predict: Callable[[Any, dict, Any], tuple[jax.Array, jax.Array]], variables: Any,
                  batcher: Batcher, batch_size: int, weights: Sequence[float],
                  inv_ps: np.ndarray) -> tuple[float, dict[str, float]]:
    """The weight of `weights` with the best P@1 on `batcher`'s split (the smaller one on a tie), and P@1 at each.

    `predict(variables, batch, weights)` is make_names_predict's function (its k may be 1); all weights are
    scored in one pass."""
    weights = sorted(weights)
    metrics = [RankingMetrics(1, inv_ps) for _ in weights]
    start = 0
    for batch, valid in eval_batches(batcher, batch_size):
        _, ids = predict(variables, batch, weights)
        truth = batcher.split.labels.take(np.arange(start, start + valid))
        for m, top in zip(metrics, np.asarray(ids)[:, :valid]):
            m.update(top, truth)
        start += valid
    scores = {f"{w:g}": m.result()["P@1"] for w, m in zip(weights, metrics)}
    best = max(weights, key=lambda w: (scores[f"{w:g}"], -w))
    return best, scores
