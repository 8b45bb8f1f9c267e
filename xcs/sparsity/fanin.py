"""The fixed fan-in sparse layer: every label row reads exactly k of the d inputs.

    logits[b, l] = sum_j h[b, indices[l, j]] * weight[l, j]        weight, indices: [L, k]

Parameters and optimizer state are O(L·k). The math runs over chunks of C label rows: a chunk's
k weights per row are scattered into a dense [C, d] block and multiplied with h, so the work
is done by the matmul units, and neither a [B, L, k] gather nor a dense [L, d] copy of the layer
ever exists. The backward pass (a custom VJP) rebuilds each block for the input gradient and
takes the weight gradient by gathering the k used columns of the chunk's h^T g product, so the
gradient too is [L, k], never [L, d]. For the softmax loss, `fanin_logsumexp` gives the log
partition without the [B, L] gradient of the logits, and without the logits too if asked (each
chunk's logits then recomputed in the backward pass).

Chunks have one static size; the last one is shifted back to end at L (as in chunked_topk), so
no padded copy of the layer is made each step. Rows it shares with the previous chunk are
computed twice from the same inputs and written twice (same values); only the input gradient
masks them out so they are counted once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from xcs.core.errors import UserError
from xcs.nn.bias import column_sum


def chunk_start(c: jax.Array, chunk: int, num_labels: int) -> jax.Array:
    """First row of chunk c; the last chunk is shifted back so that it ends at num_labels."""
    return jnp.minimum(c * chunk, num_labels - chunk)


def num_chunks(num_labels: int, chunk: int) -> int:
    return -(-num_labels // chunk)


def dense_block(weight: jax.Array, indices: jax.Array, in_features: int) -> jax.Array:
    """The rows' dense form [C, d]: block[c, indices[c, j]] += weight[c, j].

    A flat 1-D scatter-add (the fastest scatter form under XLA-CPU); with repeated indices it
    sums, which is what the gather form sum_j h[idx_j] w_j computes too.
    """
    rows = weight.shape[0]
    flat = (jnp.arange(rows, dtype=jnp.int32)[:, None] * in_features + indices).reshape(-1)
    block = jnp.zeros((rows * in_features,), weight.dtype)
    return block.at[flat].add(weight.reshape(-1), mode="promise_in_bounds").reshape(rows, in_features)


def _rows(x: jax.Array, start: jax.Array, chunk: int) -> jax.Array:
    return lax.dynamic_slice_in_dim(x, start, chunk, axis=0)


def _forward(h: jax.Array, weight: jax.Array, bias: jax.Array, indices: jax.Array, chunk: int) -> jax.Array:
    num_labels = weight.shape[0]

    def body(c, out):
        start = chunk_start(c, chunk, num_labels)
        # The bias goes in per chunk, while the chunk is in cache: added to the whole [B, L] afterwards
        # it would be one more pass over the logits.
        logits, _ = _chunk_logits(h, weight, bias, indices, start, chunk)
        return lax.dynamic_update_slice_in_dim(out, logits, start, axis=1)

    out = jnp.zeros((h.shape[0], num_labels), jnp.result_type(h, weight))
    return lax.fori_loop(0, num_chunks(num_labels, chunk), body, out)


def _write_weight_and_bias_grads(grad_w: jax.Array, grad_b: jax.Array, g_c: jax.Array, h: jax.Array,
                                 idx_c: jax.Array, start: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Writes one chunk's weight and bias gradients (from its logits gradient g_c [B, C]) at row start.

    d logits[b, l] / d weight[l, j] = h[b, idx[l, j]]: the used columns of g_c^T h. Rows the shifted
    last chunk repeats are written again with the same values (overwritten, not added).
    """
    # As h^T g_c [d, C] (the forward's matmul shape), not g_c^T h [C, d]: under XLA-CPU 0.56 vs 0.69 s
    # over the 328 chunks of an L = 670k, d = 256, B = 256 step (timed in isolation while profiling).
    gh_t = h.T @ g_c
    grad_w_c = jnp.take_along_axis(gh_t, idx_c.T, axis=0).T
    grad_w = lax.dynamic_update_slice_in_dim(grad_w, grad_w_c, start, axis=0)
    return grad_w, lax.dynamic_update_slice_in_dim(grad_b, column_sum(g_c), start, axis=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def fanin_matmul(h: jax.Array, weight: jax.Array, bias: jax.Array, indices: jax.Array, chunk: int) -> jax.Array:
    """logits [B, L] of h [B, d] through the fixed fan-in layer (weight, indices) [L, k] plus bias [L].

    Differentiable in h, weight and bias; `chunk` (static) label rows are processed at a time.
    """
    return _forward(h, weight, bias, indices, chunk)


def _fanin_fwd(h, weight, bias, indices, chunk):
    return _forward(h, weight, bias, indices, chunk), (h, weight, indices)


def _fanin_bwd(chunk, residuals, g):
    h, weight, indices = residuals
    num_labels, d = weight.shape[0], h.shape[1]

    def body(c, carry):
        grad_h, grad_w, grad_b = carry
        start = chunk_start(c, chunk, num_labels)
        w_c, idx_c = _rows(weight, start, chunk), _rows(indices, start, chunk)
        g_c = lax.dynamic_slice_in_dim(g, start, chunk, axis=1)  # [B, C]
        # Rows this chunk repeats from the previous one add to grad_h once only: their weights are
        # zeroed before the scatter ([C, k], 8x less to touch than masking g_c's [B, C] at k = d/8).
        fresh = _fresh(c, start, chunk)
        grad_h = grad_h + g_c @ dense_block(jnp.where(fresh[:, None], w_c, 0.0), idx_c, d)
        grad_w, grad_b = _write_weight_and_bias_grads(grad_w, grad_b, g_c, h, idx_c, start)
        return grad_h, grad_w, grad_b

    init = (jnp.zeros_like(h), jnp.zeros_like(weight), jnp.zeros((num_labels,), g.dtype))
    grad_h, grad_w, grad_b = lax.fori_loop(0, num_chunks(num_labels, chunk), body, init)
    return grad_h, grad_w, grad_b, None


fanin_matmul.defvjp(_fanin_fwd, _fanin_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def fanin_logsumexp(h: jax.Array, weight: jax.Array, bias: jax.Array, indices: jax.Array, chunk: int,
                    save_logits: bool = False) -> jax.Array:
    """log sum_l exp(logits[b, l]) [B] of the fan-in layer, computed one label chunk at a time.

    With the positives' logits (a [B, Y, k] gather) this is the softmax loss (the fan-in head's
    chunked path). `save_logits` (static) trades memory for time in the backward pass, which needs
    every chunk's logits again: True keeps the [B, L] logits from the forward pass (B L 4 bytes, 686
    MB at L = 670k, B = 256; three matmuls per chunk in all), False recomputes them per chunk (a
    fourth matmul, 10-19 % more step time in the heads benchmark, and no [B, L] array at all). Either
    way the [B, L] gradient of the logits never exists.
    """
    return _lse_forward(h, weight, bias, indices, chunk, False)[0]  # undifferentiated: nothing to keep


def _chunk_logits(h, weight, bias, indices, start, chunk):
    """(logits [B, C] of rows start.., their dense block [C, d])."""
    block = dense_block(_rows(weight, start, chunk), _rows(indices, start, chunk), h.shape[1])
    return h @ block.T + _rows(bias, start, chunk), block


def _fresh(c: jax.Array, start: jax.Array, chunk: int) -> jax.Array:
    """[C] bool: rows of chunk c not already in the previous chunk (all but the shifted last chunk's head)."""
    return start + jnp.arange(chunk) >= c * chunk


def _lse_forward(h, weight, bias, indices, chunk, save_logits):
    """(lse [B], the logits [B, L] if save_logits else None)."""
    num_labels = weight.shape[0]

    def body(c, carry):
        lse, saved = carry
        start = chunk_start(c, chunk, num_labels)
        logits = _chunk_logits(h, weight, bias, indices, start, chunk)[0]
        if save_logits:
            saved = lax.dynamic_update_slice_in_dim(saved, logits, start, axis=1)
        logits = jnp.where(_fresh(c, start, chunk)[None, :], logits, -jnp.inf)
        return jnp.logaddexp(lse, jax.nn.logsumexp(logits, axis=1)), saved

    dtype = jnp.result_type(h, weight)
    saved = jnp.zeros((h.shape[0], num_labels), dtype) if save_logits else None
    init = (jnp.full((h.shape[0],), -jnp.inf, dtype), saved)
    return lax.fori_loop(0, num_chunks(num_labels, chunk), body, init)


def _lse_fwd(h, weight, bias, indices, chunk, save_logits):
    lse, saved = _lse_forward(h, weight, bias, indices, chunk, save_logits)
    return lse, (h, weight, bias, indices, lse, saved)


def _lse_bwd(chunk, save_logits, residuals, g_lse):
    h, weight, bias, indices, lse, saved = residuals
    num_labels = weight.shape[0]

    def body(c, carry):
        grad_h, grad_w, grad_b = carry
        start = chunk_start(c, chunk, num_labels)
        if save_logits:
            logits = lax.dynamic_slice_in_dim(saved, start, chunk, axis=1)
            block = dense_block(_rows(weight, start, chunk), _rows(indices, start, chunk), h.shape[1])
        else:
            logits, block = _chunk_logits(h, weight, bias, indices, start, chunk)
        g_c = jnp.exp(logits - lse[:, None]) * g_lse[:, None]  # d lse / d logits = softmax
        grad_h = grad_h + jnp.where(_fresh(c, start, chunk)[None, :], g_c, 0.0) @ block
        grad_w, grad_b = _write_weight_and_bias_grads(grad_w, grad_b, g_c, h, _rows(indices, start, chunk), start)
        return grad_h, grad_w, grad_b

    init = (jnp.zeros_like(h), jnp.zeros_like(weight), jnp.zeros_like(bias))
    grad_h, grad_w, grad_b = lax.fori_loop(0, num_chunks(num_labels, chunk), body, init)
    return grad_h, grad_w, grad_b, None


fanin_logsumexp.defvjp(_lse_fwd, _lse_bwd)


def _gather_forward(h: jax.Array, weight: jax.Array, bias: jax.Array, indices: jax.Array, chunk: int) -> jax.Array:
    num_labels = weight.shape[0]
    h_t = h.T  # [d, B]: a row per input, so a label's k inputs are k contiguous rows

    def body(c, out):
        start = chunk_start(c, chunk, num_labels)
        picked = h_t[_rows(indices, start, chunk)]  # [C, k, B], for one chunk only
        logits_t = jnp.einsum("ckb,ck->cb", picked, _rows(weight, start, chunk)) + _rows(bias, start, chunk)[:, None]
        return lax.dynamic_update_slice_in_dim(out, logits_t.T, start, axis=1)

    out = jnp.zeros((h.shape[0], num_labels), jnp.result_type(h, weight))
    return lax.fori_loop(0, num_chunks(num_labels, chunk), body, out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def fanin_matmul_gather(h: jax.Array, weight: jax.Array, bias: jax.Array, indices: jax.Array, chunk: int,
                        ) -> jax.Array:
    """fanin_matmul by gathering each row's k inputs: work ∝ L·k·B instead of L·d·B.

    Slower than the dense-block form when d/k is small (memory-bound gathers against matmuls),
    much faster for wide inputs (an intermediate layer of thousands of units). A chunk of C rows
    holds a [C, k, B] gather, so `chunk` should be smaller than for the block form.
    """
    return _gather_forward(h, weight, bias, indices, chunk)


def _gather_fwd(h, weight, bias, indices, chunk):
    return _gather_forward(h, weight, bias, indices, chunk), (h, weight, indices)


def _gather_bwd(chunk, residuals, g):
    h, weight, indices = residuals
    num_labels = weight.shape[0]
    h_t = h.T

    def body(c, carry):
        grad_h_t, grad_w, grad_b = carry
        nominal = c * chunk
        start = chunk_start(c, chunk, num_labels)
        w_c, idx_c = _rows(weight, start, chunk), _rows(indices, start, chunk)
        g_t = lax.dynamic_slice_in_dim(g, start, chunk, axis=1).T  # [C, B]
        picked = h_t[idx_c]  # [C, k, B]
        grad_w = lax.dynamic_update_slice_in_dim(grad_w, jnp.einsum("ckb,cb->ck", picked, g_t), start, axis=0)
        grad_b = lax.dynamic_update_slice_in_dim(grad_b, g_t.sum(1), start, axis=0)  # row sums: fast
        g_t = jnp.where((start + jnp.arange(chunk) >= nominal)[:, None], g_t, 0.0)
        contrib = (w_c[:, :, None] * g_t[:, None, :]).reshape(-1, g_t.shape[1])  # [C k, B]
        grad_h_t = grad_h_t.at[idx_c.reshape(-1)].add(contrib, mode="promise_in_bounds")
        return grad_h_t, grad_w, grad_b

    init = (jnp.zeros_like(h_t), jnp.zeros_like(weight), jnp.zeros((num_labels,), g.dtype))
    grad_h_t, grad_w, grad_b = lax.fori_loop(0, num_chunks(num_labels, chunk), body, init)
    return grad_h_t.T, grad_w, grad_b, None


fanin_matmul_gather.defvjp(_gather_fwd, _gather_bwd)

KERNELS = ("auto", "block", "gather")


def pick_kernel(kernel: str, in_features: int, fan_in: int) -> str:
    """`auto`: the block form while the rows are at least 1/16 dense, the gather form below that."""
    if kernel not in KERNELS:
        raise UserError(f"config.sparsity.kernel={kernel!r}: expected one of {KERNELS}")
    if kernel == "auto":
        return "block" if in_features <= 16 * fan_in else "gather"
    return kernel


def chunk_scorer(h: jax.Array, weight: jax.Array, indices: jax.Array, bias: jax.Array | None, kernel: str,
                 ) -> Callable[[jax.Array, int], jax.Array]:
    """`score_chunk(start, size) -> [B, size]` for xcs.nn.topk.chunked_topk (kernel: block | gather)."""
    d, h_t = h.shape[1], h.T

    def score_chunk(start, size):
        w_c, idx_c = _rows(weight, start, size), _rows(indices, start, size)
        if kernel == "block":
            s = h @ dense_block(w_c, idx_c, d).T
        else:
            s = jnp.einsum("ckb,ck->bc", h_t[idx_c], w_c)
        return s if bias is None else s + lax.dynamic_slice_in_dim(bias, start, size)[None, :]

    return score_chunk


def kernel_chunk(kernel: str, num_labels: int, in_features: int, fan_in: int, batch: int, block_mb: float) -> int:
    """Label rows per chunk: the [C, d] block (block) or the [C, k, B] gather (gather) fills block_mb MiB."""
    per_row = in_features if kernel == "block" else fan_in * batch
    return max(1, min(num_labels, int(block_mb * 2**20) // (4 * per_row)))


def for_row_chunks(fn: Callable[[jax.Array], tuple[jax.Array, ...]], num_labels: int, chunk: int,
                   outputs: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """Runs `fn(start) -> blocks [C, ...]` over the label chunks, writing each block at rows start..

    `outputs` are the [L, ...] buffers written into. Rows of the shifted last chunk are written
    again, from the same inputs, so each row's final value comes from one call of `fn`.
    """

    def body(c, outs):
        start = chunk_start(c, chunk, num_labels)
        blocks = fn(start)
        return tuple(lax.dynamic_update_slice_in_dim(o, b, start, axis=0) for o, b in zip(outs, blocks))

    return lax.fori_loop(0, num_chunks(num_labels, chunk), body, tuple(outputs))


def sample_indices(key: jax.Array, num_labels: int, in_features: int, fan_in: int, chunk: int) -> jax.Array:
    """[L, k] int32: k distinct inputs per row, uniformly without replacement, sorted per row.

    The k largest of d uniform draws are a uniform k-subset; drawn one chunk of rows at a time.
    """
    if not 1 <= fan_in <= in_features:
        raise UserError(f"config.sparsity.fan_in={fan_in}: must be between 1 and the head's input width "
                         f"{in_features}")
    chunk = max(1, min(chunk, num_labels))

    def draw(start):
        u = jax.random.uniform(jax.random.fold_in(key, start), (chunk, in_features))
        return (jnp.sort(lax.top_k(u, fan_in)[1], axis=1).astype(jnp.int32),)

    return for_row_chunks(draw, num_labels, chunk, (jnp.zeros((num_labels, fan_in), jnp.int32),))[0]
