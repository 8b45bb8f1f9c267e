"""Multi-label losses computed from label indices, never from a dense [batch, labels] target.

Each takes logits [B, L], label_idx [B, Y] int32 and label_mask [B, Y] bool (the positives of
each point, padded) and returns the per-point loss [B]. The positives' logits are picked with a
[B, Y] gather; the dense part of each loss is a reduction over the logits alone.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from xcs.spherical_losses import SPHERICAL_LOSSES, SphericalLoss

LossFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def positive_logits(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """logits[b, label_idx[b, y]] where label_mask, else 0: [B, Y]."""
    picked = jnp.take_along_axis(logits, label_idx, axis=-1)
    return jnp.where(label_mask, picked, 0.0)


def softmax_cross_entropy(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """-mean over the positives of log softmax(logits): the target is uniform over the positives.

    A point without labels has loss 0.
    """
    picked = jnp.take_along_axis(logits, label_idx, axis=-1)
    return softmax_cross_entropy_from_parts(jax.nn.logsumexp(logits, axis=-1), picked, label_mask)


def softmax_cross_entropy_from_parts(log_partition: jax.Array, positive: jax.Array, label_mask: jax.Array,
                                     ) -> jax.Array:
    """softmax_cross_entropy from the log-sum-exp of all logits [B] and the positives' logits [B, Y]:
    for a head that computes the two without a [B, L] logits array (the fan-in head's chunked path)."""
    num_pos = label_mask.sum(-1)
    pos = jnp.where(label_mask, positive, 0.0).sum(-1)
    return jnp.where(num_pos > 0, log_partition - pos / jnp.maximum(num_pos, 1), 0.0)


def binary_cross_entropy(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """Sum over all labels of BCE: sum_j softplus(z_j) - sum_{j positive} z_j."""
    return jax.nn.softplus(logits).sum(-1) - positive_logits(logits, label_idx, label_mask).sum(-1)


def squared_hinge(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """Sum over labels of max(0, 1 - s_j z_j)^2 with s_j = +1 for positives, -1 otherwise.

    Written as the all-negative loss over every label plus a correction on the positives.
    """
    as_negative = jnp.square(jax.nn.relu(1.0 + logits)).sum(-1)
    pos = jnp.take_along_axis(logits, label_idx, axis=-1)
    correction = jnp.square(jax.nn.relu(1.0 - pos)) - jnp.square(jax.nn.relu(1.0 + pos))
    return as_negative + jnp.where(label_mask, correction, 0.0).sum(-1)


def from_spherical(fn: SphericalLoss) -> LossFn:
    """The dense form of a spherical-family loss (xcs.spherical_losses): q and s summed over the logits."""

    def loss(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
        o_pos = positive_logits(logits, label_idx, label_mask)
        return fn(o_pos, label_mask, jnp.square(logits).sum(-1), logits.sum(-1), logits.shape[-1])

    return loss


LOSSES: dict[str, LossFn] = {
    "softmax": softmax_cross_entropy,
    "bce": binary_cross_entropy,
    "squared_hinge": squared_hinge,
    # The spherical family: what the factored head (model.head.name=factored) trains exactly.
    **{name: from_spherical(fn) for name, fn in SPHERICAL_LOSSES.items()},
}


def get_loss(name: str) -> LossFn:
    if name not in LOSSES:
        raise ValueError(f"config.loss.name={name!r}: expected one of {sorted(LOSSES)}")
    return LOSSES[name]
