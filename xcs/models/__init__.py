"""Models: an encoder and a head, each chosen by name from a plain registry.

A registry maps a name to a factory `(config, ...) -> flax Module`, so a new head or encoder is
one new module plus one line here; the training loop does not change.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import ml_collections

from xcs.losses import LossFn
from xcs.models.encoders import make_bag_encoder, make_dense_encoder
from xcs.models.heads import make_dense_head

ENCODERS: dict[str, Callable[..., nn.Module]] = {"bag": make_bag_encoder, "dense": make_dense_encoder}
HEADS: dict[str, Callable[..., nn.Module]] = {"dense": make_dense_head}


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


def _pick(registry: dict[str, Callable[..., nn.Module]], name: str, key: str) -> Callable[..., nn.Module]:
    if name not in registry:
        raise ValueError(f"{key}={name!r}: expected one of {sorted(registry)}")
    return registry[name]


def build_model(config: ml_collections.ConfigDict, num_features: int, num_labels: int) -> XMCModel:
    """The model of `config.model` for a data set of this many features and labels."""
    encoder = _pick(ENCODERS, config.model.encoder.name, "config.model.encoder.name")(config, num_features)
    head = _pick(HEADS, config.model.head.name, "config.model.head.name")(
        config, config.model.encoder.width, num_labels)
    return XMCModel(encoder=encoder, head=head)
