"""Hash tables as static arrays, and fixed-size candidate blocks drawn from them.

A table set is `buckets [T, 2^bits, S]` int32: bucket k of table t holds up to S label ids
(-1 = empty slot). Building inserts every label into the bucket of its key in each table, with
  fifo       a full bucket keeps the S labels inserted last (labels are inserted in id order), or
  reservoir  a full bucket keeps a uniform random sample of S of its labels (what reservoir
             sampling over the insertion stream yields),
computed for all labels at once by a sort per table (O(L log L)), not by a loop over labels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from xcs.core.errors import UserError

INSERTIONS = ("fifo", "reservoir")
NONE = -1  # an empty slot / no candidate


def build_tables(label_keys: jax.Array, num_buckets: int, bucket_size: int, insertion: str,
                 key: jax.Array, insert: jax.Array | None = None) -> jax.Array:
    """buckets [T, num_buckets, bucket_size] int32 from the keys [L, T] of all labels; with
    `insert` [L] bool, only the labels where it is True go into the tables."""
    if insertion not in INSERTIONS:
        raise UserError(f"config.lsh.insertion={insertion!r}: expected one of {list(INSERTIONS)}")
    L, T = label_keys.shape
    ids = jnp.arange(L, dtype=jnp.int32)
    if insert is not None:  # key num_buckets: past the last bucket, dropped by the scatter below
        label_keys = jnp.where(insert[:, None], label_keys, num_buckets)

    rank_bits = max(1, (L - 1).bit_length())
    one_key = num_buckets.bit_length() + rank_bits <= 31

    def one_table(keys, k):
        # Within a bucket, the labels to keep come first: the latest (fifo) or a random order (reservoir).
        # rank [L]: a permutation of 0..L-1, the order of the labels within their buckets.
        rank = (L - 1 - ids) if insertion == "fifo" else jax.random.permutation(k, L).astype(jnp.int32)
        if one_key:  # one int32 sort key (bucket << rank_bits | rank): several times faster on XLA-CPU
            packed = jnp.sort((keys << rank_bits) | rank)
            sorted_keys = packed >> rank_bits
            order = jnp.zeros(L, jnp.int32).at[rank].set(ids)[packed & ((1 << rank_bits) - 1)]
        else:
            sorted_keys, _, order = jax.lax.sort((keys, rank, ids), num_keys=2)
        within = ids - jnp.searchsorted(sorted_keys, sorted_keys, side="left").astype(jnp.int32)
        slot = jnp.where(within < bucket_size, within, bucket_size)  # beyond the bucket: dropped
        table = jnp.full((num_buckets, bucket_size), NONE, jnp.int32)
        return table.at[sorted_keys, slot].set(order, mode="drop")

    return jax.vmap(one_table, in_axes=(1, 0))(label_keys, jax.random.split(key, T))


def lookup(buckets: jax.Array, query_keys: jax.Array) -> jax.Array:
    """The label ids [B, T * P * S] in the buckets of each query's keys [B, T] or [B, T, P] (P probes
    per table; -1 = empty slot)."""
    T = buckets.shape[0]
    tables = jnp.arange(T).reshape((1, T) + (1,) * (query_keys.ndim - 2))
    found = buckets[tables, query_keys]  # [B, T, (P,) S]
    return found.reshape(query_keys.shape[0], -1)


# Tiers of a candidate: a true label beats a retrieved one, which beats a random fill.
FILL, RETRIEVED, TRUE = 0, 1, 2


def select_candidates(ids: jax.Array, tiers: jax.Array, budget: int, num_labels: int, key: jax.Array,
                      ) -> tuple[jax.Array, jax.Array]:
    """A deduplicated block of `budget` label ids per row, sorted ascending, from ids [R, N].

    Each distinct id in a row (id -1 = nothing) is ranked by its best tier (`tiers` [R, N]: TRUE,
    RETRIEVED or FILL), then by how many times it was retrieved (in how many tables / by how many
    queries), then at random; the `budget` best are kept. Returns (ids [R, budget] sorted ascending,
    with `num_labels` in the unused slots; valid [R, budget] bool).
    """
    R, N = ids.shape
    if (num_labels + 1) * 4 > 2**31 - 1:
        raise ValueError(f"select_candidates: {num_labels} labels do not fit the int32 sort key (id * 4 + tier)")
    sentinel = jnp.int32(num_labels)
    ids = jnp.where(ids >= 0, ids, sentinel)
    # Sort by (id, best tier first): the first entry of each run of equal ids carries its best tier.
    # One int32 key id * 4 + (TRUE - tier): XLA-CPU sorts a single key several times faster than a
    # lexicographic sort of two arrays.
    key_s = jnp.sort(ids * 4 + (TRUE - tiers), axis=1)
    ids_s, tier_s = key_s >> 2, TRUE - (key_s & 3)
    first = jnp.concatenate([jnp.ones((R, 1), bool), ids_s[:, 1:] != ids_s[:, :-1]], axis=1)
    group = jnp.cumsum(first, axis=1) - 1
    retrieved = jax.vmap(lambda g, r: jax.ops.segment_sum(r, g, num_segments=N))(
        group, (tier_s == RETRIEVED).astype(jnp.float32))
    count = jnp.take_along_axis(retrieved, group, axis=1)
    noise = jax.random.uniform(key, (R, N))  # < 1: breaks ties only
    score = tier_s.astype(jnp.float32) * (N + 1) + count + noise
    score = jnp.where(first & (ids_s < sentinel), score, -jnp.inf)
    budget_eff = min(budget, N)
    top, pos = jax.lax.top_k(score, budget_eff)
    valid = top > -jnp.inf
    chosen = jnp.where(valid, jnp.take_along_axis(ids_s, pos, axis=1), sentinel)
    chosen = jnp.sort(chosen, axis=1)  # ascending, the unused slots (= num_labels) last
    valid = chosen < sentinel
    if budget_eff < budget:
        chosen = jnp.pad(chosen, ((0, 0), (0, budget - budget_eff)), constant_values=num_labels)
        valid = jnp.pad(valid, ((0, 0), (0, budget - budget_eff)))
    return chosen, valid


def fill_ids(key: jax.Array, rows: int, budget: int, num_labels: int) -> jax.Array:
    """Random fill [rows, budget]: uniform label ids, or every label once when budget >= num_labels
    (so a budget of L makes the candidates all labels, and the sampled loss the full one)."""
    if budget >= num_labels:
        return jnp.broadcast_to(jnp.arange(num_labels, dtype=jnp.int32), (rows, num_labels))
    return jax.random.randint(key, (rows, budget), 0, num_labels, jnp.int32)


def positions(candidates: jax.Array, label_idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Where each label id [..., Y] sits in the ascending candidate ids [C] (or [B, C] per row with
    label_idx [B, Y]), and whether it is there."""
    if candidates.ndim == 1:
        pos = jnp.searchsorted(candidates, label_idx).astype(jnp.int32)
        pos = jnp.minimum(pos, candidates.shape[0] - 1)
        return pos, candidates[pos] == label_idx
    pos = jax.vmap(jnp.searchsorted)(candidates, label_idx).astype(jnp.int32)
    pos = jnp.minimum(pos, candidates.shape[1] - 1)
    return pos, jnp.take_along_axis(candidates, pos, axis=1) == label_idx
