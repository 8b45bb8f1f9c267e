"""XMCModel: the encoder and the head of a run, the one Flax module the train state holds."""

from __future__ import annotations

import flax.linen as nn
import jax

from xcs.losses import LossFn


class XMCModel(nn.Module):
    """encoder(batch) -> h [B, d]; the head turns h into a loss or a top-k."""

    encoder: nn.Module
    head: nn.Module

    def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        return self.encoder(batch, train)

    def loss(self, batch: dict[str, jax.Array], loss_fn: LossFn, train: bool) -> jax.Array:
        """Per-point loss [B]."""
        return self.head.loss(self.encoder(batch, train), batch["label_idx"], batch["label_mask"], loss_fn)

    def topk(self, batch: dict[str, jax.Array], k: int) -> tuple[jax.Array, jax.Array]:
        return self.head.topk(self.encoder(batch, False), k)
