"""Prune and regrow for the fixed fan-in layer (SET, Mocanu et al. 2018; RigL, Evci et al. 2020).

At each rewiring, every label row drops its `n` smallest-|w| slots and gives them `n` inputs it
does not use (neither kept nor just dropped), so each row keeps exactly k distinct inputs and the
number of weights never changes. SET picks the new inputs at random; RigL picks those with the
largest |dloss/dW| of the current batch, where the dense gradient of row l is g[:, l]^T h, computed
for one chunk of rows at a time (never a full [L, d] gradient). `n` = floor(f(t) k), where the
drop fraction f(t) follows a cosine from `drop_fraction` to 0 at the end of rewiring.

All functions are pure and jit-compatible; `n` may be traced (top-k uses a static bound on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from xcs.sparsity.fanin import chunk_start, for_row_chunks

# (start, chunk) -> [chunk, d] regrowth scores of rows start..start+chunk-1 (larger is better).
GrowScores = Callable[[jax.Array, int], jax.Array]


def drop_fraction_at(step: jax.Array | int, drop_fraction: float, end_step: int) -> jax.Array:
    """Cosine decay from drop_fraction at step 0 to 0 at end_step (and 0 after)."""
    t = jnp.clip(jnp.asarray(step, jnp.float32) / max(end_step, 1), 0.0, 1.0)
    return 0.5 * drop_fraction * (1.0 + jnp.cos(jnp.pi * t))


def max_drop(drop_fraction: float, fan_in: int, in_features: int) -> int:
    """Static bound on the slots rewired per row: floor(drop_fraction k), at most the unused inputs."""
    return max(0, min(int(drop_fraction * fan_in), in_features - fan_in))


def num_to_drop(step: jax.Array | int, drop_fraction: float, end_step: int, fan_in: int,
                in_features: int) -> jax.Array:
    """n = floor(f(step) k), clipped to the static bound of max_drop."""
    n = jnp.floor(drop_fraction_at(step, drop_fraction, end_step) * fan_in + 1e-6).astype(jnp.int32)
    return jnp.minimum(n, max_drop(drop_fraction, fan_in, in_features))


def set_scores(key: jax.Array, in_features: int) -> GrowScores:
    """SET: uniform random scores, drawn per chunk from `key` folded with the chunk's first row."""
    return lambda start, chunk: jax.random.uniform(jax.random.fold_in(key, start), (chunk, in_features))


def rigl_scores(g: jax.Array, h: jax.Array) -> GrowScores:
    """RigL: |dloss/dW[l, e]| = |sum_b g[b, l] h[b, e]| for g = dloss/dlogits [B, L], h the inputs [B, d]."""

    def scores(start, chunk):
        g_c = lax.dynamic_slice_in_dim(g, start, chunk, axis=1)
        return jnp.abs(lax.dot_general(g_c, h, (((0,), (0,)), ((), ()))))

    return scores


def prune_regrow(weight: jax.Array, indices: jax.Array, scores: GrowScores, num_drop: jax.Array,
                 bound: int, chunk: int, new_weight: Callable[[jax.Array, tuple[int, int]], jax.Array],
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(weight, indices, regrown mask), all [L, k]: each row's `num_drop` smallest-|w| slots rewired.

    `bound` (static) >= num_drop bounds the work; `new_weight(start, shape)` gives the regrown
    slots' values (zeros for the usual init). Ties in |w| drop the earlier slot; ties in the
    scores grow the lower input id.
    """
    num_labels, fan_in = weight.shape
    chunk = min(chunk, num_labels)
    if bound == 0:
        return weight, indices, jnp.zeros(weight.shape, bool)

    def rewire(start):
        w_c, idx_c = (lax.dynamic_slice_in_dim(x, start, chunk, axis=0) for x in (weight, indices))
        rows = jnp.arange(chunk)[:, None]
        drop_slots = jnp.argsort(jnp.abs(w_c), axis=1, stable=True)[:, :bound]  # [C, bound]
        s = scores(start, chunk)
        s = s.at[rows, idx_c].set(-jnp.inf)  # only inputs the row does not use can grow
        grown = lax.top_k(s, bound)[1].astype(indices.dtype)  # [C, bound], best first
        take = jnp.broadcast_to(jnp.arange(bound) < num_drop, grown.shape)
        mask = jnp.zeros(w_c.shape, bool).at[rows, drop_slots].set(take)
        new_idx = idx_c.at[rows, drop_slots].set(jnp.where(take, grown, idx_c[rows, drop_slots]))
        new_w = jnp.where(mask, new_weight(start, w_c.shape).astype(w_c.dtype), w_c)
        return new_w, new_idx, mask

    outputs = (jnp.zeros_like(weight), jnp.zeros_like(indices), jnp.zeros(weight.shape, bool))
    return for_row_chunks(rewire, num_labels, chunk, outputs)


def reset_slots(tree: Any, param_path: tuple[str, ...], mask: jax.Array) -> Any:
    """Zeros the entries `mask` of every leaf of `tree` that sits at `param_path` (e.g. Adam's m and v).

    Optimizer states mirror the parameter tree, so the moments of a parameter are the leaves
    whose path ends with the parameter's dict keys and whose shape is the parameter's; every
    other leaf (other parameters' moments, step counts) is returned as it is.
    """

    def visit(path, leaf):
        keys = tuple(getattr(p, "key", None) for p in path[-len(param_path):])
        if keys == param_path and getattr(leaf, "shape", None) == mask.shape:
            return jnp.where(mask, jnp.zeros_like(leaf), leaf)
        return leaf

    return jax.tree_util.tree_map_with_path(visit, tree)


__all__ = ["drop_fraction_at", "max_drop", "num_to_drop", "set_scores", "rigl_scores", "prune_regrow",
           "reset_slots", "chunk_start"]
