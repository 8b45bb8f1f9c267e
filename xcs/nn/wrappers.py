"""The intermediate layer: a dense layer a head may sit behind (config.model.head.intermediate).

It implements the head interface (loss, topk, and the kNN pair) and holds the wrapped head as
`inner`, so wrappers compose (xcs.registry puts the auxiliary objective, xcs.auxiliary, outermost:
it sees the encoder output) and all their parameters stay under params['head'].
"""

from __future__ import annotations

import flax.linen as nn
import jax

from xcs.losses import LossFn
from xcs.nn.bias import WideDense

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "none": lambda x: x}


class Intermediate(nn.Module):
    """h -> activation(h W + b) of width `width`, then the inner head (Schultheis & Babbar 2023:
    a wide layer gives a fixed fan-in head more inputs to choose from)."""

    width: int
    activation: str
    inner: nn.Module

    def setup(self):
        self.dense = WideDense(self.width)

    def _hidden(self, h: jax.Array) -> jax.Array:
        return ACTIVATIONS[self.activation](self.dense(h))

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        return self.inner.loss(self._hidden(h), label_idx, label_mask, loss_fn)

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        return self.inner.topk(self._hidden(h), k)

    def topk_log_partition(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        return self.inner.topk_log_partition(self._hidden(h), k)

    def label_logits(self, h: jax.Array, ids: jax.Array) -> jax.Array:
        return self.inner.label_logits(self._hidden(h), ids)

    def chunk_logits(self, h: jax.Array, start: jax.Array, size: int) -> jax.Array:
        return self.inner.chunk_logits(self._hidden(h), start, size)
