"""Heads that own their update: the train step's one hook for heads that are not trained by optax.

Most heads are Flax modules whose parameters the optimizer updates from the gradient of the
loss. Some output layers keep their weights outside `params` and update them with their own
exact or sparse rule: the factored head (xcs.models.factored: exact SGD on W = V·U in O(d²) per
example) and, later, an LSH head with a row-sparse Adam over its candidate rows. Such a head:

  * keeps its state in non-trainable Flax collections, i.e. in TrainState.model_state: created by
    `model.init` like any variable, checkpointed and restored with the train state, donated to the
    jitted step (so row updates of a [L, d] matrix happen in place), read by `topk` at prediction;
  * registers a factory in HEAD_UPDATES under its config.model.head.name:
        factory(config, model, total_steps) -> HeadUpdate
  * and the train step (xcs.train.state.make_train_step) then does, instead of differentiating
    the loss through the head:
        h, vjp = jax.vjp(encoder, params)                   # h [B, d]
        model_state, loss, grad_h = update(model_state, h, batch, learning_rate(step), key)
        grads = vjp(grad_h)                                 # the encoder trains with optax as usual
    where `loss` is the per-point loss [B] and `grad_h` is ∂ mean(loss) / ∂h [B, d], both at the
    head's state before its update. `key` is a fresh PRNG key per step (for heads that sample).

Its optax parameters and optimizer (config.train.optimizer.head) are then unused; the logged
`lr_head` is `learning_rate(step)`. Periodic maintenance of the head (re-stabilising, rehashing)
stays a periodic action (xcs.train.actions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

from xcs.lsh.update import lsh_head_update
from xcs.models import factored_head
from xcs.train.optim import learning_rate_schedule

# (model_state, h [B, d], batch, lr, key) -> (model_state, per-point loss [B], ∂ mean loss / ∂h [B, d])
UpdateFn = Callable[[Any, jax.Array, dict, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class HeadUpdate:
    learning_rate: optax.Schedule  # step -> the head's learning rate
    update: UpdateFn  # pure, traced inside the jitted train step


HeadUpdateFactory = Callable[[ml_collections.ConfigDict, nn.Module, int], HeadUpdate]


def _factored(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> HeadUpdate:
    # Plain SGD at config.factored.learning_rate, with the loop's warmup and schedule.
    return HeadUpdate(learning_rate_schedule(config.factored, config.train, total_steps),
                      factored_head.update_fn(model.head, config))


# config.model.head.name -> factory of that head's update.
HEAD_UPDATES: dict[str, HeadUpdateFactory] = {"factored": _factored, "lsh": lsh_head_update}


def make_head_update(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> HeadUpdate | None:
    """The configured head's own update, or None when the optimizer trains the head."""
    name = config.model.head.name
    return HEAD_UPDATES[name](config, model, total_steps) if name in HEAD_UPDATES else None
