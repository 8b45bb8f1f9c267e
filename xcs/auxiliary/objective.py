"""The auxiliary objective's module: BCE of a dense classifier over label clusters beside any head."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from xcs.losses import LossFn, binary_cross_entropy
from xcs.nn.bias import WideDense

AUX_COLLECTION = "aux"  # non-trainable: `alpha` (set each step by the aux action) and `label_cluster`


def first_occurrences(ids: jax.Array, mask: jax.Array) -> jax.Array:
    """[B, Y] bool: mask, minus entries whose id already occurs earlier in the same row."""
    same = (ids[:, :, None] == ids[:, None, :]) & mask[:, None, :]
    earlier = jnp.tril(jnp.ones(same.shape[1:], bool), k=-1)
    return mask & ~(same & earlier).any(-1)


class AuxObjective(nn.Module):
    """(1 - alpha) * inner loss + alpha * BCE (mean over clusters) of a dense classifier over label clusters.

    The targets are the clusters of the point's positives (each counted once). The classifier
    reads the wrapper's input (the encoder output), giving the encoder a dense gradient path
    while a sparse head is still poor (Ullah et al. 2024). alpha is a variable of the `aux`
    collection, decayed by a periodic action (xcs.auxiliary.actions), so the model knows no steps.
    Prediction uses the inner head only.
    """

    inner: nn.Module
    num_clusters: int
    label_cluster: np.ndarray  # [L] int32 cluster of each label (read at init only)
    alpha: float  # initial alpha

    def setup(self):
        self.classifier = WideDense(self.num_clusters)
        self.alpha_now = self.variable(AUX_COLLECTION, "alpha", lambda: jnp.asarray(self.alpha, jnp.float32))
        self.cluster_of = self.variable(AUX_COLLECTION, "label_cluster",
                                        lambda: jnp.asarray(self.label_cluster, jnp.int32))

    def aux_loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array) -> jax.Array:
        clusters = self.cluster_of.value[label_idx]
        # Mean over the clusters (torch BCEWithLogitsLoss's default reduction): with the sum, the auxiliary
        # gradient swamped the main loss and Adam's second moments (smoke run: P@1 1% instead of 44%).
        bce = binary_cross_entropy(self.classifier(h), clusters, first_occurrences(clusters, label_mask))
        return bce / self.num_clusters

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        alpha = self.alpha_now.value
        main = self.inner.loss(h, label_idx, label_mask, loss_fn)
        return (1.0 - alpha) * main + alpha * self.aux_loss(h, label_idx, label_mask)

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        return self.inner.topk(h, k)

    def topk_log_partition(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        return self.inner.topk_log_partition(h, k)

    def label_logits(self, h: jax.Array, ids: jax.Array) -> jax.Array:
        return self.inner.label_logits(h, ids)

    def chunk_logits(self, h: jax.Array, start: jax.Array, size: int) -> jax.Array:
        return self.inner.chunk_logits(h, start, size)
