"""The factored head (model.head.name=factored): xcs.factored.layer behind the head interface.

The head's matrices are not trainable parameters: they live in the non-trainable collection
`factored` (so in TrainState.model_state, checkpointed with it) and change only through the
exact SGD update that the train step calls through its declaration (xcs.factored.method), and through the
periodic stabilisation (a periodic action of the same declaration). `loss` evaluates the loss without updating; `topk`
scores labels chunk by chunk.

With `use_bias` a constant 1 is appended to h, so the last column of W is a per-label bias
trained by the same exact update (as in the authors' code); ∇h drops that column.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from xcs.factored import layer as factored
from xcs.losses import LossFn
from xcs.spherical_losses import SPHERICAL_LOSSES, SphericalLoss

COLLECTION = "factored"
MODES = ("minibatch", "per_example")


def with_bias(h: jax.Array, use_bias: bool) -> jax.Array:
    return jnp.concatenate([h, jnp.ones((*h.shape[:-1], 1), h.dtype)], axis=-1) if use_bias else h


class FactoredHead(nn.Module):
    in_features: int
    num_labels: int
    use_bias: bool
    label_chunk: int
    init_scale: float
    loss_name: str  # a key of SPHERICAL_LOSSES (config.loss.name)

    def setup(self):
        dim = self.in_features + int(self.use_bias)
        self.state = self.variable(
            COLLECTION, "state", lambda: factored.init(self.make_rng("params"), self.num_labels, dim, self.init_scale))

    @property
    def spherical_loss(self) -> SphericalLoss:
        return SPHERICAL_LOSSES[self.loss_name]

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        """Per-point loss [B] (config.loss.name's spherical form; `loss_fn` is its dense form, unused)."""
        loss, _ = factored.loss_and_grad_h(self.state.value, with_bias(h, self.use_bias), label_idx, label_mask,
                                           self.spherical_loss)
        return loss

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        return factored.topk(self.state.value, with_bias(h, self.use_bias), k, self.label_chunk)


def make_factored_head(config: ml_collections.ConfigDict, in_features: int, num_labels: int) -> FactoredHead:
    head = config.model.head
    return FactoredHead(in_features, num_labels, head.use_bias, head.label_chunk, config.factored.init_scale,
                        config.loss.name)


def head_state(model_state: dict) -> factored.FactoredState:
    """The factored state inside TrainState.model_state (the head is XMCModel's `head` submodule)."""
    return model_state[COLLECTION]["head"]["state"]


def replace_head_state(model_state: dict, state: factored.FactoredState) -> dict:
    return {**model_state, COLLECTION: {**model_state[COLLECTION], "head": {"state": state}}}


def update_fn(head: FactoredHead, config: ml_collections.ConfigDict):
    """The pure `(model_state, h, batch, lr, key) -> (model_state, per-point loss, ∇h of the mean loss)`.

    One exact SGD step on the mean loss of the batch with learning rate `lr` (minibatch: a single
    step, Woodbury; per_example: B steps of lr/B in order, Sherman–Morrison), and weight decay
    config.factored.weight_decay on W.
    """
    cfg = config.factored
    step = factored.minibatch_update if cfg.mode == "minibatch" else factored.sequential_update

    def update(model_state, h, batch, lr, key):
        del key  # deterministic
        B, d = h.shape
        # The pure functions step on the summed loss: η = lr/B. Weight decay λ per unit of lr: a
        # single minibatch step takes λB, each of the B per-example steps takes λ.
        decay = cfg.weight_decay * (B if cfg.mode == "minibatch" else 1)
        state, loss, grad_h = step(head_state(model_state), with_bias(h, head.use_bias), batch["label_idx"],
                                   batch["label_mask"], head.spherical_loss, lr / B, decay)
        return replace_head_state(model_state, state), loss, grad_h[:, :d] / B

    return update


def stabilize_fn(config: ml_collections.ConfigDict):
    """The pure `model_state -> model_state` of xcs.factored.layer.stabilize with config's band."""
    cfg = config.factored

    def run(model_state):
        state, _ = factored.stabilize(head_state(model_state), cfg.singular_band, cfg.max_corrections,
                                      cfg.refactorize_fraction)
        return replace_head_state(model_state, state)

    return run
