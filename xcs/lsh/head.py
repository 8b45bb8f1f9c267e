"""The LSH output layer as pure functions of its state: init, (re)hash, candidates, update, top-k.

Vijayanarasimhan, Shlens, Monga & Yagnik (2014), "Deep Networks with Large Output Spaces"; SLIDE
(Chen et al. 2020); MONGOOSE (Chen et al. 2021). The weights of all labels are one plain [L, D]
matrix (D = d + 1 with the bias folded in as the last column: rows [w, b], queries [h, 1]). Every
label row is hashed into T tables; a query retrieves the labels in the buckets of its keys.

Training (`update`): the retrieved labels of every point of the batch, the batch's true labels
(always) and a random fill are merged into ONE deduplicated block of `batch_candidates` labels, or
more (block_size: a share of the labels, the batch's label slots B x Y), true labels first, then by how
often they were retrieved. Every point is scored against that
block with one [B, D] x [D, C] product, so the softmax (or BCE) is over the candidates only; the
gradient reaches only the C candidate rows, and the row-sparse optimizer (xcs.nn.row_optim)
touches only those rows. Sharing the block over the batch is what makes the touched rows unique
(no segment-sum of duplicate rows) and the scoring a dense matmul; each point still sees every
label that was retrieved for it unless the block overflows. With batch_candidates >= L the block
is all labels and the loss and gradients are the full softmax's.

Prediction (`topk`): per point, a block of `candidates` labels (retrieved, deduplicated, random
fill), scored exactly and ranked, in chunks of points. Multi-probe (config.lsh.multiprobe) is used
here only: in training the batch's own buckets already hold far more labels (B·T·S) than its block.
"""

from __future__ import annotations

import dataclasses
import math

import flax.struct
import jax
import jax.numpy as jnp

from xcs.losses import LossFn
from xcs.lsh.hashing import HashParams, HashSpec, hash_keys, hash_rows_chunked, init_hash, probe_keys
from xcs.lsh.tables import FILL, RETRIEVED, TRUE, build_tables, fill_ids, lookup, positions, select_candidates
from xcs.nn.row_optim import RowOptState, init_row_opt
from xcs.nn.topk import chunked_topk

PREDICT_MODES = ("candidates", "exact")


@dataclasses.dataclass(frozen=True)
class LSHConfig:
    """Static settings (config.lsh) of one head."""

    spec: HashSpec | None  # None: family=uniform (no tables; candidates are true labels + random fill)
    bucket_size: int
    insertion: str
    candidates: int  # per point at prediction
    batch_candidates: int  # per batch in training
    hash_chunk: int  # label rows hashed at once
    predict: str  # candidates | exact
    score_chunk: int  # prediction: candidate scores held at once (points x candidates)
    multiprobe: int = 0  # extra buckets per table a query looks into (one code away, least certain first)
    hash_labels: str = "all"  # all | trained: only labels that were a true label of a training batch go in
    mips: bool = False  # simple-LSH transform (mips_rows / mips_queries); spec.dim is then D + 1
    candidate_share: float = 0.0  # training block: at least this share of the labels


@flax.struct.dataclass
class LSHState:
    weights: jax.Array  # [L, D]: label rows [w, b]
    opt: RowOptState
    hash: HashParams
    buckets: jax.Array  # [T, 2^bits, S] int32, -1 = empty
    label_keys: jax.Array  # [L, T] int32: the keys of the rows when the tables were last built
    trained: jax.Array  # [L] bool: the label was a true label of some training batch
    row_scale: jax.Array  # [] the largest norm of an inserted row at the last rehash (mips)


def augment(h: jax.Array, use_bias: bool) -> jax.Array:
    """[h, 1] (bias folding) or h."""
    return jnp.concatenate([h, jnp.ones((*h.shape[:-1], 1), h.dtype)], axis=-1) if use_bias else h


def mips_rows(rows: jax.Array, scale: jax.Array) -> jax.Array:
    """Simple-LSH (Neyshabur & Srebro 2015): rows r [N, D] -> [r / M, sqrt(1 - |r / M|^2)], unit length.

    With queries [q, 0] (mips_queries) the angle between the two follows q·r / (|q| M), so sign
    hashes (simhash) collide by inner product, the softmax's score, instead of by angle: a label
    with a long row and a high score is no longer missed for a short row pointing the same way.
    Rows longer than M (not inserted, or grown since the rehash) get a last entry of 0.
    """
    r = rows / scale
    tail = jnp.sqrt(jnp.maximum(1.0 - jnp.sum(r * r, axis=-1, keepdims=True), 0.0))
    return jnp.concatenate([r, tail], axis=-1)


def mips_queries(q: jax.Array) -> jax.Array:
    """[q, 0]: the query side of simple-LSH (its length does not change a sign hash)."""
    return jnp.concatenate([q, jnp.zeros((*q.shape[:-1], 1), q.dtype)], axis=-1)


def _row_scale(cfg: LSHConfig, state: LSHState) -> jax.Array:
    """M: the largest norm among the rows that go into the tables (1 without mips)."""
    if not cfg.mips:
        return jnp.ones((), state.weights.dtype)
    norms = jnp.sqrt(jnp.sum(state.weights * state.weights, axis=1))
    if cfg.hash_labels == "trained":
        norms = jnp.where(state.trained, norms, 0.0)
    return jnp.maximum(norms.max(), jnp.finfo(norms.dtype).tiny)


def _row_keys(cfg: LSHConfig, state: LSHState, rows: jax.Array, scale: jax.Array) -> jax.Array:
    """Bucket keys [N, T] of label rows [N, D] (through mips_rows where configured)."""
    return hash_keys(cfg.spec, state.hash, mips_rows(rows, scale) if cfg.mips else rows)


def rehash(cfg: LSHConfig, state: LSHState, key: jax.Array) -> LSHState:
    """Tables rebuilt from the current weights with the current hash functions."""
    if cfg.spec is None:
        return state
    scale = _row_scale(cfg, state)
    keys = hash_rows_chunked(lambda rows: _row_keys(cfg, state, rows, scale), state.weights, cfg.hash_chunk)
    insert = state.trained if cfg.hash_labels == "trained" else None
    buckets = build_tables(keys, cfg.spec.num_buckets, cfg.bucket_size, cfg.insertion, key, insert)
    return state.replace(buckets=buckets, label_keys=keys, row_scale=scale)


def rebuild(cfg: LSHConfig, state: LSHState, key: jax.Array) -> LSHState:
    """New hash functions, then rehash."""
    if cfg.spec is None:
        return state
    hash_key, table_key = jax.random.split(key)
    return rehash(cfg, state.replace(hash=init_hash(hash_key, cfg.spec)), table_key)


def drift(cfg: LSHConfig, state: LSHState, key: jax.Array, sample: int) -> jax.Array:
    """Share of (label, table) keys of `sample` random labels that changed since the last rehash:
    MONGOOSE's cheap check of whether the tables are stale."""
    if cfg.spec is None:
        return jnp.zeros(())
    rows = jax.random.randint(key, (sample,), 0, state.weights.shape[0])
    now = _row_keys(cfg, state, state.weights[rows], state.row_scale)
    return (now != state.label_keys[rows]).mean()


def init_state(key: jax.Array, cfg: LSHConfig, num_labels: int, dim: int, use_bias: bool,
               optimizer: str) -> LSHState:
    """Rows w ~ N(0, 1/d) of length d = `dim` (LeCun), biases 0 (a last column if use_bias); tables built."""
    w_key, hash_key, table_key = jax.random.split(key, 3)
    w = jax.random.normal(w_key, (num_labels, dim), jnp.float32) / math.sqrt(dim)
    weights = jnp.concatenate([w, jnp.zeros((num_labels, 1), w.dtype)], axis=1) if use_bias else w
    if cfg.spec is None:
        # Unused placeholders of size 1 (checkpoints refuse empty arrays).
        hash_params, buckets, keys = {}, jnp.full((1, 1, 1), -1, jnp.int32), jnp.zeros((1, 1), jnp.int32)
    else:
        hash_params = init_hash(hash_key, cfg.spec)
        buckets = jnp.zeros((cfg.spec.num_tables, cfg.spec.num_buckets, cfg.bucket_size), jnp.int32)
        keys = jnp.zeros((num_labels, cfg.spec.num_tables), jnp.int32)
    trained = jnp.zeros((num_labels,), bool)
    state = LSHState(weights, init_row_opt(weights, optimizer), hash_params, buckets, keys, trained,
                     jnp.ones((), jnp.float32))
    return rehash(cfg, state, table_key)


def mark_trained(state: LSHState, label_idx: jax.Array, label_mask: jax.Array) -> LSHState:
    """Records the batch's true labels as trained (hash_labels=trained inserts only those)."""
    L = state.trained.shape[0]
    return state.replace(trained=state.trained.at[jnp.where(label_mask, label_idx, L)].set(True, mode="drop"))


def _retrieved(cfg: LSHConfig, state: LSHState, h_aug: jax.Array, extra: int = 0) -> jax.Array:
    """Label ids [B, T * (1 + extra) * S] in each point's buckets and `extra` probed ones per table
    (-1 = empty slot)."""
    if cfg.spec is None:
        return jnp.zeros((h_aug.shape[0], 0), jnp.int32)
    query = jax.lax.stop_gradient(mips_queries(h_aug) if cfg.mips else h_aug)
    return lookup(state.buckets, probe_keys(cfg.spec, state.hash, query, extra))


def block_size(cfg: LSHConfig, batch_size: int, label_slots: int, num_labels: int) -> int:
    """The training block's size: config.lsh.batch_candidates, raised to candidate_share of the labels and to the
    batch's label slots (B x Y) where those are more (so that every true label is a candidate)."""
    return max(cfg.batch_candidates, math.ceil(cfg.candidate_share * num_labels), batch_size * label_slots)


def train_candidates(cfg: LSHConfig, state: LSHState, h_aug: jax.Array, label_idx: jax.Array,
                     label_mask: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The batch's candidate block: (ids [C] ascending, valid [C]); contains every true label."""
    L = state.weights.shape[0]
    B, Y = label_idx.shape
    C = block_size(cfg, B, Y, L)
    retrieved = _retrieved(cfg, state, h_aug).reshape(1, -1)
    true = jnp.where(label_mask, label_idx, -1).reshape(1, -1)
    fill_key, select_key = jax.random.split(key)
    fill = fill_ids(fill_key, 1, C, L)
    ids = jnp.concatenate([true, retrieved, fill], axis=1)
    tiers = jnp.concatenate([jnp.full(true.shape, TRUE), jnp.full(retrieved.shape, RETRIEVED),
                             jnp.full(fill.shape, FILL)], axis=1).astype(jnp.int32)
    cand, valid = select_candidates(ids, tiers, min(C, L), L, select_key)
    return cand[0], valid[0]


def candidate_loss(weights_c: jax.Array, valid: jax.Array, h_aug: jax.Array, pos: jax.Array,
                   label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
    """Per-point loss [B] over the candidate rows weights_c [C, D] only (padding: logit -inf)."""
    logits = jnp.where(valid[None, :], h_aug @ weights_c.T, -jnp.inf)
    return loss_fn(logits, pos, label_mask)


def loss_and_grads(cfg: LSHConfig, state: LSHState, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array,
                   loss_fn: LossFn, use_bias: bool, key: jax.Array):
    """(per-point loss [B], ∂mean/∂h [B, d], candidate ids [C], valid [C], ∂mean/∂rows [C, D])."""
    h_aug = augment(h, use_bias)
    cand, valid = train_candidates(cfg, state, h_aug, label_idx, label_mask, key)
    pos, found = positions(cand, label_idx)
    rows = state.weights[jnp.where(valid, cand, 0)]

    def objective(h_aug, rows):
        per_point = candidate_loss(rows, valid, h_aug, pos, label_mask & found, loss_fn)
        return per_point.mean(), per_point

    (_, per_point), (grad_h, grad_rows) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(h_aug, rows)
    return per_point, grad_h[:, : h.shape[1]], cand, valid, grad_rows


def predict_candidates(cfg: LSHConfig, state: LSHState, h_aug: jax.Array, key: jax.Array,
                       ) -> tuple[jax.Array, jax.Array]:
    """Each point's candidate block: (ids [B, M] ascending, valid [B, M]), M = config.lsh.candidates.

    With hash_labels=trained there is no random fill: a label never trained keeps its random init,
    and a random row that happens to score high would only displace the retrieved ones."""
    L = state.weights.shape[0]
    M = min(cfg.candidates, L)
    retrieved = _retrieved(cfg, state, h_aug, cfg.multiprobe)
    fill_key, select_key = jax.random.split(key)
    fill = fill_ids(fill_key, h_aug.shape[0], M, L)
    if cfg.hash_labels == "trained":
        fill = jnp.full((h_aug.shape[0], 0), -1, jnp.int32)
    ids = jnp.concatenate([retrieved, fill], axis=1)
    tiers = jnp.concatenate([jnp.full(retrieved.shape, RETRIEVED), jnp.full(fill.shape, FILL)], axis=1)
    return select_candidates(ids, tiers.astype(jnp.int32), M, L, select_key)


def rescore(weights: jax.Array, h_aug: jax.Array, cand: jax.Array, valid: jax.Array, k: int,
            chunk: int) -> tuple[jax.Array, jax.Array]:
    """Exact scores of each point's candidates, top-k: (scores [B, k], ids [B, k], -1 = none).

    Points are scored `chunk` at a time, so the gathered rows are [chunk, M, D], never [B, M, D].
    """
    B, M = cand.shape
    chunk = max(1, min(chunk, B))
    num = -(-B // chunk)
    pad = num * chunk - B
    h_p = jnp.pad(h_aug, ((0, pad), (0, 0))).reshape(num, chunk, -1)
    c_p = jnp.pad(cand, ((0, pad), (0, 0))).reshape(num, chunk, M)
    v_p = jnp.pad(valid, ((0, pad), (0, 0))).reshape(num, chunk, M)
    k_eff = min(k, M)

    def one(args):
        h, c, v = args
        s = jnp.einsum("bmd,bd->bm", weights[jnp.where(v, c, 0)], h)
        s, at = jax.lax.top_k(jnp.where(v, s, -jnp.inf), k_eff)
        return s, jnp.where(s > -jnp.inf, jnp.take_along_axis(c, at, axis=1), -1)

    scores, ids = jax.lax.map(one, (h_p, c_p, v_p))
    scores, ids = scores.reshape(-1, k_eff)[:B], ids.reshape(-1, k_eff)[:B]
    if k_eff < k:
        scores = jnp.pad(scores, ((0, 0), (0, k - k_eff)), constant_values=-jnp.inf)
        ids = jnp.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return scores, ids


def exact_topk(cfg: LSHConfig, state: LSHState, h: jax.Array, k: int, use_bias: bool, with_logsumexp: bool = False):
    """The top-k over all labels, scored in chunks of labels (and the log-sum-exp of all logits if asked)."""
    h_aug = augment(h, use_bias)

    def score_chunk(start, size):
        return h_aug @ jax.lax.dynamic_slice_in_dim(state.weights, start, size, axis=0).T

    return chunked_topk(score_chunk, h.shape[0], state.weights.shape[0], cfg.score_chunk, k,
                        with_logsumexp=with_logsumexp)


def chunk_logits(state: LSHState, h: jax.Array, start: jax.Array, size: int, use_bias: bool) -> jax.Array:
    """Logits [B, size] of the labels start..start+size-1 (`size` static)."""
    return augment(h, use_bias) @ jax.lax.dynamic_slice_in_dim(state.weights, start, size, axis=0).T


def label_logits(state: LSHState, h: jax.Array, ids: jax.Array, use_bias: bool) -> jax.Array:
    """Logits [B, M] of the labels ids [B, M] (only their rows are read)."""
    return jnp.einsum("bd,bmd->bm", augment(h, use_bias), state.weights[ids])


def topk(cfg: LSHConfig, state: LSHState, h: jax.Array, k: int, use_bias: bool,
         key: jax.Array) -> tuple[jax.Array, jax.Array]:
    if cfg.predict == "exact":
        return exact_topk(cfg, state, h, k, use_bias)
    h_aug = augment(h, use_bias)
    cand, valid = predict_candidates(cfg, state, h_aug, key)
    return rescore(state.weights, h_aug, cand, valid, k, max(1, cfg.score_chunk // cand.shape[1]))


def candidate_recall(cand: jax.Array, valid: jax.Array, targets: jax.Array, target_mask: jax.Array) -> jax.Array:
    """Per point: the share of its targets [B, K] (masked) that its candidate block [B, M] holds.

    With targets = the exact top-k labels this is the recall of the exact top-k; with the true
    labels, the recall of the true labels."""
    pos, found = positions(cand, targets)
    found = found & jnp.take_along_axis(valid, pos, axis=1) & target_mask
    return found.sum(-1) / jnp.maximum(target_mask.sum(-1), 1)
