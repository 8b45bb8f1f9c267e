"""Output heads: from embeddings h [B, d] to a loss over the positives and a top-k over labels.

Every head implements two methods, which is all the training loop and the evaluator use:
  loss(h, label_idx, label_mask, loss_fn, train) -> per-point loss [B]
  topk(h, k) -> (scores [B, k], label ids [B, k])
so a head that never forms [B, L] logits (sparse, LSH, factored) plugs in the same way.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import ml_collections

from xcs.losses import LossFn
from xcs.models.topk import chunked_topk


class DenseHead(nn.Module):
    """A full linear layer: logits = h @ W + b with W [d, L]."""

    in_features: int
    num_labels: int
    use_bias: bool
    label_chunk: int

    def setup(self):
        self.kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.in_features, self.num_labels))
        self.bias = self.param("bias", nn.initializers.zeros, (self.num_labels,)) if self.use_bias else None

    def logits(self, h: jax.Array) -> jax.Array:
        out = h @ self.kernel
        return out if self.bias is None else out + self.bias

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        return loss_fn(self.logits(h), label_idx, label_mask)

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        def score_chunk(start, size):
            s = h @ jax.lax.dynamic_slice_in_dim(self.kernel, start, size, axis=1)
            if self.bias is not None:
                s = s + jax.lax.dynamic_slice_in_dim(self.bias, start, size)[None, :]
            return s

        return chunked_topk(score_chunk, h.shape[0], self.num_labels, self.label_chunk, k)


def make_dense_head(config: ml_collections.ConfigDict, in_features: int, num_labels: int) -> DenseHead:
    head = config.model.head
    return DenseHead(in_features, num_labels, head.use_bias, head.label_chunk)
