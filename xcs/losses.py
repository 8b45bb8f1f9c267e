"""Multi-label losses computed from label indices, never from a dense [batch, labels] target.

Each takes logits [B, L], label_idx [B, Y] int32 and label_mask [B, Y] bool (the positives of
each point, padded) and returns the per-point loss [B]. The positives' logits are picked with a
[B, Y] gather; the dense part of each loss is a reduction over the logits alone.

For precision@k (Menon et al. 2019): `softmax_pal` and `ova` are consistent, `softmax` (the target spread
uniformly over the positives) is not; `bce` is `ova` with a zero logit offset, which trains badly at
10^4+ labels (see one_vs_all).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from xcs.core.errors import UserError
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


def softmax_pal(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """Pick-all-labels softmax, unnormalised: sum over the positives of -log softmax(logits).

    Each positive is its own softmax term: loss = |Y| logsumexp(z) - sum_{l in Y} z_l. Menon, Rawat, Reddi
    and Kumar (NeurIPS 2019, "Multilabel reductions: what is my loss optimising?") show its population
    minimiser is softmax(z)_l = P(y_l = 1 | x) / E[|Y| | x]: per point a common factor, so the ranking is
    that of the marginals and the loss is consistent for precision@k. `softmax` (the same terms divided by
    |Y|) learns E[y_l / |Y| | x] instead, which ranks low a label that comes with many others.

    Normalisation: none per point; any weight that depends on the point's |Y| changes the minimiser the
    same way. A constant (a mean over the batch, 1 / mean |Y| of the data) would not, but the optimizers
    here (Adam) are invariant to a constant scale of the loss, so none is applied. A point without labels
    has loss 0.

    In practice (configs/tables/panel.py, validation splits) it scores as `softmax` within run-to-run noise
    on every shape: for one point with free logits both have the minimiser softmax = y / |Y|, and the
    difference (the weight |Y| on a point's loss) matters only where similar inputs carry different label
    sets. It does not rank a dominant label higher; `ova` does.
    """
    picked = jnp.take_along_axis(logits, label_idx, axis=-1)
    return softmax_pal_from_parts(jax.nn.logsumexp(logits, axis=-1), picked, label_mask)


def softmax_pal_from_parts(log_partition: jax.Array, positive: jax.Array, label_mask: jax.Array) -> jax.Array:
    """softmax_pal from the log-sum-exp of all logits [B] and the positives' logits [B, Y] (as
    softmax_cross_entropy_from_parts)."""
    return jnp.where(label_mask, log_partition[..., None] - positive, 0.0).sum(-1)


def binary_cross_entropy(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """Sum over all labels of BCE: sum_j softplus(z_j) - sum_{j positive} z_j."""
    return jax.nn.softplus(logits).sum(-1) - positive_logits(logits, label_idx, label_mask).sum(-1)


def ova_offset(num_labels: int) -> float:
    """The logit offset of `one_vs_all`: log L, so that every label starts at probability ~1/L."""
    return math.log(max(num_labels, 1))


def one_vs_all(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
    """One-versus-all BCE on logits shifted by -log L: sum_j softplus(z_j - log L) - sum_{j positive} (z_j - log L).

    The shift is the output bias initialised to -log L (the prior of a label when all are equally rare)
    instead of 0, written into the loss so that no head changes; the top-k of z is that of z - log L, so
    prediction is unchanged. OVA is consistent for precision@k (Menon et al. 2019).

    Plain BCE (`bce`, offset 0) is what scored 19.1 P@1 on wordnet_hypernyms in the tuning runs; on the
    panel's validation split (configs/tables/panel.py, 8 epochs) it reaches 25.0 against 48.5 for this loss,
    the offset being the only difference, and its training loss stalls at ~6.4 where this one's reaches 0.02.
    With a zero offset every label starts at probability 1/2, so the first steps' gradient is the L - |Y|
    negatives' (~L/2 per point against |Y| for the positives): the loss falls from L log 2 (~14k) to ~50 in
    the first 100 steps by pushing every logit down, and training does not recover from that start (likely
    through Adam's second moments, which remember the early gradients for ~1000 steps and shrink the later
    steps; not measured). Shifted, the negatives' gradients start at ~1 per point.
    """
    c = ova_offset(logits.shape[-1])
    negative = jax.nn.softplus(logits - c).sum(-1)
    return one_vs_all_from_parts(negative, positive_logits(logits, label_idx, label_mask), label_mask,
                                 logits.shape[-1])


def one_vs_all_from_parts(softplus_sum: jax.Array, positive: jax.Array, label_mask: jax.Array,
                          num_labels: int) -> jax.Array:
    """one_vs_all from sum_j softplus(z_j - log L) over all labels [B] and the positives' logits [B, Y]:
    for a head that accumulates the softplus sum chunk by chunk."""
    c = ova_offset(num_labels)
    return softplus_sum - jnp.where(label_mask, positive - c, 0.0).sum(-1)


def one_vs_all_sampled(num_labels: int) -> LossFn:
    """one_vs_all over a block of candidate labels standing for all `num_labels` (the lsh head's training block):
    logits [B, C] of the block (-inf: an empty slot), the positives at label_idx in it.

    The offset is log L, as over all labels, and the negatives' softplus sum is scaled by (L - P) / (C' - P)
    (C' valid candidates, P the point's positives): the block's negatives stand for all L - P as a uniform sample
    would. When the block is all L labels this is one_vs_all exactly.
    """
    c = ova_offset(num_labels)

    def loss(logits: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
        positive = positive_logits(logits, label_idx, label_mask)
        positives = label_mask.sum(-1)
        positive_softplus = jnp.where(label_mask, jax.nn.softplus(positive - c), 0.0).sum(-1)
        negative_softplus = jax.nn.softplus(logits - c).sum(-1) - positive_softplus
        candidates = jnp.isfinite(logits).sum(-1)
        scale = (num_labels - positives) / jnp.maximum(candidates - positives, 1)
        return scale * negative_softplus + positive_softplus - jnp.where(label_mask, positive - c, 0.0).sum(-1)

    return loss


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
    "softmax_pal": softmax_pal,
    "bce": binary_cross_entropy,
    "ova": one_vs_all,
    "squared_hinge": squared_hinge,
    # The spherical family: what the factored head (model.head.name=factored) trains exactly.
    **{name: from_spherical(fn) for name, fn in SPHERICAL_LOSSES.items()},
}


# Losses computed from the log partition [B] and the positives' logits [B, Y] alone: a chunked head (the fan-in
# head's fanin_logsumexp) takes the `_from_parts` form of any loss here, never forming the [B, L] gradient.
FROM_LOG_PARTITION: dict[LossFn, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    softmax_cross_entropy: softmax_cross_entropy_from_parts,
    softmax_pal: softmax_pal_from_parts,
}


# config.loss.name=auto: the loss is chosen from the training labels when the data is read (choose_loss).
AUTO = "auto"


def top_label_share(label_counts: np.ndarray, num_points: int) -> float:
    """The share of points that hold the most frequent label (label_counts: points per label)."""
    return float(label_counts.max()) / num_points if num_points and len(label_counts) else 0.0


def choose_loss(share: float, threshold: float) -> str:
    """`auto`'s choice: `ova` when one label is on at least `threshold` of the training points, else `softmax`.

    softmax spreads a point's target over its positives, so a label that comes with many others (a common
    dependency, a hierarchy's root) is ranked low; ova ranks by each label's own probability (Menon et al.
    2019). On validation splits (configs/tables/panel.py and the built-in synthetic set) ova won P@1 by
    1.5-4.2 where the top label is on 17-86 % of the points and lost 0.5-2.7 where it is on 0.7-8.5 %; the
    default threshold (config.loss.auto_share) lies between.
    """
    return "ova" if share >= threshold else "softmax"


def get_loss(name: str) -> LossFn:
    if name not in LOSSES:
        raise UserError(f"config.loss.name={name!r}: expected one of {sorted(LOSSES)}")
    return LOSSES[name]
