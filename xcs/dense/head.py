"""Output heads: from embeddings h [B, d] to a loss over the positives and a top-k over labels.

Every head implements two methods, which is all the training loop and the evaluator use:
  loss(h, label_idx, label_mask, loss_fn, train) -> per-point loss [B]
  topk(h, k) -> (scores [B, k], label ids [B, k])
so a head that never forms [B, L] logits (sparse, LSH, factored) plugs in the same way.

A head whose softmax probabilities can be read exactly (dense, sparse) also implements the two
methods the kNN fusion at prediction uses (xcs.train.knn):
  topk_log_partition(h, k) -> (scores [B, k], label ids [B, k], log-sum-exp of all logits [B])
  label_logits(h, ids [B, M]) -> logits of those labels [B, M]
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh

from xcs.dense import sharded as sharded_head
from xcs.losses import LossFn
from xcs.nn.bias import add_bias
from xcs.nn.matmul import head_matmul
from xcs.nn.topk import chunked_topk
from xcs.parallel import mesh as mesh_lib


class DenseHead(nn.Module):
    """A full linear layer: logits = h @ W + b with W [d, L].

    With a `mesh` (config.mesh), W and b are split on their label axis over the `model` devices and
    loss and top-k run per label shard (xcs.dense.sharded), never forming [B, L] on one device.
    """

    in_features: int
    num_labels: int
    use_bias: bool
    label_chunk: int
    mesh: Mesh | None = None
    matmul_dtype: str = "float32"  # inputs of the training loss's product (xcs.nn.matmul); prediction: float32

    def setup(self):
        self.kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.in_features, self.num_labels))
        self.bias = self.param("bias", nn.initializers.zeros, (self.num_labels,)) if self.use_bias else None

    def logits(self, h: jax.Array) -> jax.Array:
        out = head_matmul(h, self.kernel, self.matmul_dtype)
        return out if self.bias is None else add_bias(out, self.bias)

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        if self.mesh is not None:
            return sharded_head.dense_loss(self.mesh, h, self.kernel, self.bias, label_idx, label_mask, loss_fn)
        return loss_fn(self.logits(h), label_idx, label_mask)

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        if self.mesh is not None:
            return sharded_head.dense_topk(self.mesh, h, self.kernel, self.bias, k, self.label_chunk)

        return chunked_topk(self._score_chunk(h), h.shape[0], self.num_labels, self.label_chunk, k)

    def topk_log_partition(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        return chunked_topk(self._score_chunk(h), h.shape[0], self.num_labels, self.label_chunk, k,
                            with_logsumexp=True)

    def chunk_logits(self, h: jax.Array, start: jax.Array, size: int) -> jax.Array:
        return self._score_chunk(h)(start, size)

    def label_logits(self, h: jax.Array, ids: jax.Array) -> jax.Array:
        columns = jnp.take(self.kernel, ids, axis=1)  # [d, B, M]: only the labels asked for
        out = jnp.einsum("bd,dbm->bm", h, columns)
        return out if self.bias is None else out + self.bias[ids]

    def _score_chunk(self, h: jax.Array):
        def score_chunk(start, size):
            s = h @ jax.lax.dynamic_slice_in_dim(self.kernel, start, size, axis=1)
            if self.bias is not None:
                s = s + jax.lax.dynamic_slice_in_dim(self.bias, start, size)[None, :]
            return s

        return score_chunk


def make_dense_head(config: ml_collections.ConfigDict, in_features: int, num_labels: int) -> DenseHead:
    head = config.model.head
    return DenseHead(in_features, num_labels, head.use_bias, head.label_chunk, mesh_lib.make_mesh(config.mesh),
                     head.matmul_dtype)
