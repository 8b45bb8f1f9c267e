"""The dense head's loss and top-k with its label axis split over the `model` mesh axis.

Written with jax.shard_map and explicit collectives, because XLA's automatic partitioning of
`take_along_axis` on label-sharded logits gathers the whole [B, L] row to every device. Here each
device scores only its own L/n labels and what crosses devices is small:

  loss   the positives' logits [B, Y] (each owned by one shard: psum of masked local gathers) and
         the per-point partial reductions [B] (sum of exp / softplus / squares, psum; the softmax
         max-shift is a pmax of a stop-gradient, since pmax has no derivative rule);
  top-k  each shard's top-k [B, k] (all-gathered to [B, n·k], then one more top-k).

The batch is split on `data`; the kernel's gradient is summed over `data` by shard_map's
transpose of the replicated input (no explicit collective). Every loss of xcs.losses has a form
here; each is checked against the unsharded loss in tests/test_parallel*.py.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from xcs.core.errors import UserError
from xcs.losses import LOSSES, LossFn, one_vs_all_from_parts, ova_offset, softmax_pal_from_parts
from xcs.nn.topk import chunked_topk
from xcs.parallel.mesh import DATA, MODEL
from xcs.spherical_losses import SPHERICAL_LOSSES, SphericalLoss

# (local logits [b, L/n], positives' logits [b, Y] (global, 0 where masked), label_mask, L) -> loss [b].
# Runs inside shard_map: sums over labels are psum'd over MODEL.
ShardedLoss = Callable[[jax.Array, jax.Array, jax.Array, int], jax.Array]


def _label_sum(x: jax.Array) -> jax.Array:
    """Sum over the label axis of all shards: [b, L/n] -> [b]."""
    return lax.psum(x.sum(-1), MODEL)


def _log_partition(z: jax.Array) -> jax.Array:
    """logsumexp over the labels of all shards: [b, L/n] -> [b]."""
    shift = lax.pmax(lax.stop_gradient(z.max(-1)), MODEL)
    return shift + jnp.log(_label_sum(jnp.exp(z - shift[:, None])))


def _softmax(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
    lse = _log_partition(z)
    num_pos = mask.sum(-1)
    return jnp.where(num_pos > 0, lse - pos.sum(-1) / jnp.maximum(num_pos, 1), 0.0)


def _softmax_pal(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
    return softmax_pal_from_parts(_log_partition(z), pos, mask)


def _bce(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
    return _label_sum(jax.nn.softplus(z)) - pos.sum(-1)


def _ova(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
    return one_vs_all_from_parts(_label_sum(jax.nn.softplus(z - ova_offset(num_labels))), pos, mask, num_labels)


def _squared_hinge(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
    correction = jnp.square(jax.nn.relu(1.0 - pos)) - jnp.square(jax.nn.relu(1.0 + pos))
    return _label_sum(jnp.square(jax.nn.relu(1.0 + z))) + jnp.where(mask, correction, 0.0).sum(-1)


def _spherical(fn: SphericalLoss) -> ShardedLoss:
    def loss(z: jax.Array, pos: jax.Array, mask: jax.Array, num_labels: int) -> jax.Array:
        return fn(pos, mask, _label_sum(jnp.square(z)), _label_sum(z), num_labels)

    return loss


SHARDED_LOSSES: dict[str, ShardedLoss] = {
    "softmax": _softmax, "softmax_pal": _softmax_pal, "bce": _bce, "ova": _ova, "squared_hinge": _squared_hinge,
    **{name: _spherical(fn) for name, fn in SPHERICAL_LOSSES.items()},
}


def sharded_form(loss_fn: LossFn) -> ShardedLoss:
    """The label-sharded form of a loss of xcs.losses.LOSSES."""
    for name, fn in LOSSES.items():
        if fn is loss_fn:
            if name not in SHARDED_LOSSES:
                raise UserError(f"config.loss.name={name!r} has no label-sharded form; use config.mesh.shape=(1, 1)")
            return SHARDED_LOSSES[name]
    raise ValueError(f"{loss_fn!r} is not a loss of xcs.losses.LOSSES: no label-sharded form")


def _local_scores(h: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    z = h @ kernel
    return z if bias is None else z + bias


def _shard_offset(local_labels: int) -> jax.Array:
    return lax.axis_index(MODEL) * local_labels


def dense_loss(mesh: Mesh, h: jax.Array, kernel: jax.Array, bias: jax.Array | None, label_idx: jax.Array,
               label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
    """Per-point loss [B] of logits h @ kernel + bias, kernel [d, L] split on `model`, batch on `data`."""
    form, num_labels = sharded_form(loss_fn), kernel.shape[1]

    def local(h, label_idx, label_mask, kernel, *bias):
        z = _local_scores(h, kernel, bias[0] if bias else None)
        local_idx = label_idx - _shard_offset(z.shape[-1])
        owned = label_mask & (local_idx >= 0) & (local_idx < z.shape[-1])
        picked = jnp.take_along_axis(z, jnp.clip(local_idx, 0, z.shape[-1] - 1), axis=-1)
        pos = lax.psum(jnp.where(owned, picked, 0.0), MODEL)
        return form(z, pos, label_mask, num_labels)

    args, specs = (h, label_idx, label_mask, kernel), (P(DATA), P(DATA), P(DATA), P(None, MODEL))
    if bias is not None:
        args, specs = args + (bias,), specs + (P(MODEL),)
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P(DATA))(*args)


def dense_topk(mesh: Mesh, h: jax.Array, kernel: jax.Array, bias: jax.Array | None, k: int,
               label_chunk: int) -> tuple[jax.Array, jax.Array]:
    """Top-k (scores, label ids) [B, k]: a chunked top-k on each label shard, then a merge of the n·k."""

    def local(h, kernel, *bias):
        b = bias[0] if bias else None
        local_labels = kernel.shape[1]

        def score_chunk(start, size):
            s = h @ lax.dynamic_slice_in_dim(kernel, start, size, axis=1)
            return s if b is None else s + lax.dynamic_slice_in_dim(b, start, size)[None, :]

        scores, ids = chunked_topk(score_chunk, h.shape[0], local_labels, label_chunk, k)
        ids = jnp.where(ids >= 0, ids + _shard_offset(local_labels), -1)
        all_scores = lax.all_gather(scores, MODEL, axis=1, tiled=True)  # [b, n·k]
        all_ids = lax.all_gather(ids, MODEL, axis=1, tiled=True)
        top, pos = lax.top_k(all_scores, k)
        return top, jnp.take_along_axis(all_ids, pos, axis=1)

    args, specs = (h, kernel), (P(DATA), P(None, MODEL))
    if bias is not None:
        args, specs = args + (bias,), specs + (P(MODEL),)
    # check_vma=False: chunked_topk's loop carry starts replicated and becomes per-shard; the merged
    # result is the same on every `model` shard, and nothing here is differentiated.
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=(P(DATA), P(DATA)), check_vma=False)(*args)
