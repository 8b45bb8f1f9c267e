"""Losses of the spherical family (Vincent et al. 2015; de Brébisson & Vincent 2016).

A spherical loss depends on the output o ∈ R^L of a point only through q = ‖o‖², s = Σ_j o_j
and the outputs at its positives. That is what lets the factored head (xcs.factored.layer)
compute the loss, its gradient and the exact SGD update without forming o.

Each loss here is `fn(o_pos [..., Y], mask [..., Y] bool, q [...], s [...], num_labels) -> [...]`
with the positives' outputs padded like label_idx (mask False on padding; those entries must not
change the value). The same functions give the dense losses of xcs.losses (q and s summed over
the logits), so the factored head and a naive dense head train on exactly the same objective.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

SphericalLoss = Callable[[jax.Array, jax.Array, jax.Array, jax.Array, int], jax.Array]

SPHERICAL_SOFTMAX_EPS = 0.01  # ε in (o_c² + ε) / Σ_j (o_j² + ε): keeps the ratio away from 0/0 at o = 0
ZLOSS_A, ZLOSS_B = 1.0, 0.0  # Z-loss (1/a) softplus(a (b - z)); a=1, b=0 is the authors' example setting
ZLOSS_VAR_EPS = 1e-12  # added to the variance of o: the loss stays finite when all outputs are equal


def _mean_over_positives(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of values over the positives; 0 for a point without positives."""
    n = mask.sum(-1)
    return jnp.where(n > 0, jnp.where(mask, values, 0.0).sum(-1) / jnp.maximum(n, 1), 0.0)


def squared_error(o_pos: jax.Array, mask: jax.Array, q: jax.Array, s: jax.Array, num_labels: int) -> jax.Array:
    """‖o − y‖² with y = 1 on the positives, 0 elsewhere: q − 2 Σ_pos o_k + |pos|."""
    m = mask.astype(o_pos.dtype)
    return q - 2.0 * (m * o_pos).sum(-1) + m.sum(-1)


def spherical_softmax(o_pos: jax.Array, mask: jax.Array, q: jax.Array, s: jax.Array, num_labels: int) -> jax.Array:
    """−mean over the positives of log p_k, p_k = (o_k² + ε) / (q + L ε)."""
    eps = SPHERICAL_SOFTMAX_EPS
    log_p = jnp.log(jnp.square(o_pos) + eps) - jnp.log(q + num_labels * eps)[..., None]
    return -_mean_over_positives(log_p, mask)


def taylor_softmax(o_pos: jax.Array, mask: jax.Array, q: jax.Array, s: jax.Array, num_labels: int) -> jax.Array:
    """−mean over the positives of log p_k, p_k = f(o_k) / Σ_j f(o_j) with f(o) = 1 + o + o²/2 > 0."""
    f = 1.0 + o_pos + 0.5 * jnp.square(o_pos)
    log_p = jnp.log(f) - jnp.log(num_labels + s + 0.5 * q)[..., None]
    return -_mean_over_positives(log_p, mask)


def zloss(o_pos: jax.Array, mask: jax.Array, q: jax.Array, s: jax.Array, num_labels: int) -> jax.Array:
    """Mean over the positives of (1/a) softplus(a (b − z_k)), z = (o − mean(o)) / std(o)."""
    mu = s / num_labels
    sigma = jnp.sqrt(jnp.maximum(q / num_labels - jnp.square(mu), 0.0) + ZLOSS_VAR_EPS)
    z = (o_pos - mu[..., None]) / sigma[..., None]
    return _mean_over_positives(jax.nn.softplus(ZLOSS_A * (ZLOSS_B - z)) / ZLOSS_A, mask)


SPHERICAL_LOSSES: dict[str, SphericalLoss] = {
    "squared_error": squared_error,
    "spherical_softmax": spherical_softmax,
    "taylor_softmax": taylor_softmax,
    "zloss": zloss,
}
