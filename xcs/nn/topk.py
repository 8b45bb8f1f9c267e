"""Top-k over a huge label axis, one chunk of labels at a time.

Scores for all labels are never held at once: a loop over label chunks keeps a running
[B, k] top-k, so memory is O(B * (chunk + k)) whatever the number of labels.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def chunked_topk(
    score_chunk: Callable[[jax.Array, int], jax.Array],
    batch_size: int,
    num_labels: int,
    chunk: int,
    k: int,
    with_logsumexp: bool = False,
) -> tuple[jax.Array, ...]:
    """Top-k scores and label ids [B, k] (descending) over `num_labels` labels.

    With `with_logsumexp`, also the log-sum-exp of every label's score [B] (the softmax's log
    partition), accumulated in the same pass.

    `score_chunk(start, size)` returns the scores [B, size] of labels start..start+size-1, with
    `size` static. The last chunk is shifted back to end at num_labels (so every chunk has the
    same static size); labels it repeats from the previous chunk are masked out.
    """
    chunk = min(chunk, num_labels)
    num_chunks = -(-num_labels // chunk)
    k_eff = min(k, num_labels)

    def body(c, carry):
        best_s, best_i, lse = carry
        nominal = c * chunk
        start = jnp.minimum(nominal, num_labels - chunk)
        s = score_chunk(start, chunk)
        ids = start + jnp.arange(chunk, dtype=jnp.int32)
        s = jnp.where(ids[None, :] >= nominal, s, -jnp.inf)
        if with_logsumexp:
            lse = jnp.logaddexp(lse, jax.nn.logsumexp(s, axis=1))
        cs, ci = jax.lax.top_k(s, min(k_eff, chunk))
        all_s = jnp.concatenate([best_s, cs], axis=1)
        all_i = jnp.concatenate([best_i, ids[ci]], axis=1)
        top_s, pos = jax.lax.top_k(all_s, k_eff)
        return top_s, jnp.take_along_axis(all_i, pos, axis=1), lse

    init = (jnp.full((batch_size, k_eff), -jnp.inf), jnp.full((batch_size, k_eff), -1, jnp.int32),
            jnp.full((batch_size,), -jnp.inf))
    scores, ids, lse = jax.lax.fori_loop(0, num_chunks, body, init)
    if k_eff < k:  # fewer labels than k: pad with id -1, which matches no label
        scores = jnp.pad(scores, ((0, 0), (0, k - k_eff)), constant_values=-jnp.inf)
        ids = jnp.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return (scores, ids, lse) if with_logsumexp else (scores, ids)
